/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Safe reading of files that a request or the configuration names (control path only).
 *
 * Every path is opened O_NONBLOCK (a FIFO never blocks the control thread), checked with
 * fstat to be a regular file no larger than the caller's bound, read within a time bound,
 * and checked not to have changed while read. Files the data path depends on are copied
 * into memory the daemon owns (a heap buffer or a sealed memfd), so nothing done to the
 * file afterwards — truncation, rewriting — can crash or change the running daemon.
 *
 * Errors: -errno, and a message in err that names the path and the reason ("PATH: a FIFO,
 * not a regular file", "PATH: 9000000000 bytes, more than the limit of ...").
 */
#ifndef SKYGATE_FILE_H
#define SKYGATE_FILE_H

#include <stddef.h>
#include <sys/stat.h>

/** Default time bound for reading one file. */
#define SKY_FILE_TIMEOUT_MS 5000u

/**
 * Open a regular file for reading: O_NONBLOCK at open (FIFOs), fstat, size <= max_bytes
 * (0 = no bound). Returns the descriptor (blocking mode, for plain reads) or -errno.
 * st, when not NULL, receives the fstat result.
 */
int sky_file_open(const char *path, size_t max_bytes, struct stat *st, char *err, size_t errlen);

/**
 * Read a whole regular file into a malloc'd buffer (NUL-terminated after len bytes; free()
 * it). timeout_ms = 0 means SKY_FILE_TIMEOUT_MS. Returns 0 or -errno.
 */
int sky_file_read(const char *path, size_t max_bytes, unsigned int timeout_ms, void **buf,
		  size_t *len, char *err, size_t errlen);

/**
 * Copy a whole regular file into a sealed memfd (no shrink, grow or write: safe to mmap
 * for as long as it is open) positioned at offset 0. Returns the memfd or -errno; *len
 * receives the size when len is not NULL.
 */
int sky_file_memfd(const char *path, size_t max_bytes, unsigned int timeout_ms, size_t *len,
		   char *err, size_t errlen);

/** SHA-256 of len bytes as 64 lowercase hex digits (OpenSSL's libcrypto). 0, or -EIO with
 *  hex empty. */
int sky_sha256_hex(const void *data, size_t len, char hex[65]);

#endif /* SKYGATE_FILE_H */
