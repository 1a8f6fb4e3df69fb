/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The systemd notification protocol (sd_notify(3)): READY=1 once the ports and workers
 * run, STATUS= lines, WATCHDOG=1 from the main loop while the workers are alive,
 * RELOADING=1 / READY=1 around a reload, STOPPING=1. Built with libsystemd
 * (SKY_HAVE_LIBSYSTEMD) it sends to $NOTIFY_SOCKET; without libsystemd, or when not started
 * by systemd (no NOTIFY_SOCKET), every call is a no-op. Main lcore only.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "gateway.h"
#include "sky_build_config.h"

#if SKY_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

void
gw_notify(const char *fmt, ...)
{
#if SKY_HAVE_LIBSYSTEMD
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	(void)sd_notify(0, buf);
#else
	(void)fmt;
#endif
}

uint64_t
gw_notify_watchdog_usec(void)
{
#if SKY_HAVE_LIBSYSTEMD
	uint64_t usec = 0;

	/* 0 keeps WATCHDOG_USEC/WATCHDOG_PID set: a reload re-reads nothing from them */
	if (sd_watchdog_enabled(0, &usec) > 0)
		return usec;
#endif
	return 0;
}
