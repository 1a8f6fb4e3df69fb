/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Port set-up: probe each configured device (PCI address or vdev string), configure
 * queues (RSS on the subscriber address where the PMD has it), start, and assign RX
 * queues and shaped TX outputs to workers.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_ethdev.h>

#include "gateway.h"

/* "net_memif0,role=server,..." -> "net_memif0"; "0000:03:00.0" -> itself */
static void
dev_name(const char *device, char *name, size_t len)
{
	size_t n = strcspn(device, ",");

	if (n >= len)
		n = len - 1;
	memcpy(name, device, n);
	name[n] = '\0';
}

int
gw_ports_probe(struct gw *g, char *err, size_t errlen)
{
	for (unsigned int i = 0; i < g->n_ports; i++) {
		struct gw_port *p = &g->ports[i];
		char name[RTE_ETH_NAME_MAX_LEN];
		uint16_t pid;
		int rc;

		dev_name(p->device, name, sizeof(name));
		if (rte_eth_dev_get_port_by_name(name, &pid) != 0) {
			rc = rte_dev_probe(p->device);
			if (rc < 0 && rc != -EEXIST) {
				snprintf(err, errlen, "port '%s': cannot probe device '%s': %s",
					 p->name, p->device, rte_strerror(-rc));
				return -1;
			}
			if (rte_eth_dev_get_port_by_name(name, &pid) != 0) {
				snprintf(err, errlen,
					 "port '%s': device '%s' probed but no ethdev named '%s' "
					 "(is the PCI device bound to vfio-pci?)",
					 p->name, p->device, name);
				return -1;
			}
		}
		p->port_id = pid;
	}
	return 0;
}

/* A pair runs one queue per worker when both ports can hash on L3 addresses. */
static bool
port_can_rss(const struct gw_port *p, unsigned int n_workers)
{
	struct rte_eth_dev_info info;

	if (n_workers < 2 || rte_eth_dev_info_get(p->port_id, &info) != 0)
		return false;
	return (info.flow_type_rss_offloads & RTE_ETH_RSS_IP) != 0 &&
	       info.max_rx_queues >= n_workers && info.max_tx_queues >= n_workers;
}

static int
port_configure(struct gw *g, struct gw_port *p, char *err, size_t errlen)
{
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	int socket = rte_eth_dev_socket_id(p->port_id);
	uint16_t rxd = (uint16_t)p->rx_desc, txd = (uint16_t)p->tx_desc;
	int rc;

	if (socket < 0)
		socket = 0;
	memset(&conf, 0, sizeof(conf));
	rc = rte_eth_dev_info_get(p->port_id, &info);
	if (rc != 0) {
		snprintf(err, errlen, "port '%s': dev_info: %s", p->name, rte_strerror(-rc));
		return -1;
	}
	if (p->rss) {
		/* subscriber address only: source on uplink, destination on backhaul ports,
		 * so a subscriber's two directions land on the same worker */
		uint64_t hf = RTE_ETH_RSS_IP | (p->dir == SKY_DIR_UP ? RTE_ETH_RSS_L3_SRC_ONLY
								     : RTE_ETH_RSS_L3_DST_ONLY);

		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf =
			hf & (info.flow_type_rss_offloads | RTE_ETH_RSS_L3_SRC_ONLY |
			      RTE_ETH_RSS_L3_DST_ONLY);
	}
	if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE)
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
	rc = rte_eth_dev_configure(p->port_id, p->n_queues, p->n_queues, &conf);
	if (rc != 0) {
		snprintf(err, errlen, "port '%s' (%s): configure %u queues: %s", p->name, p->device,
			 p->n_queues, rte_strerror(-rc));
		return -1;
	}
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(p->port_id, &rxd, &txd);
	if (rc != 0) {
		snprintf(err, errlen, "port '%s': descriptors: %s", p->name, rte_strerror(-rc));
		return -1;
	}
	for (uint16_t q = 0; q < p->n_queues; q++) {
		rc = rte_eth_rx_queue_setup(p->port_id, q, rxd, (unsigned int)socket, NULL,
					    g->pool);
		if (rc == 0)
			rc = rte_eth_tx_queue_setup(p->port_id, q, txd, (unsigned int)socket, NULL);
		if (rc != 0) {
			snprintf(err, errlen, "port '%s': queue %u setup: %s", p->name, q,
				 rte_strerror(-rc));
			return -1;
		}
	}
	rc = rte_eth_dev_start(p->port_id);
	if (rc != 0) {
		snprintf(err, errlen, "port '%s' (%s): start: %s", p->name, p->device,
			 rte_strerror(-rc));
		return -1;
	}
	p->started = true;
	/* inline: every frame must reach us whatever its destination MAC */
	rte_eth_promiscuous_enable(p->port_id);
	return 0;
}

int
gw_ports_start(struct gw *g, char *err, size_t errlen)
{
	int slot = 0;

	for (unsigned int i = 0; i < g->n_ports; i++) {
		struct gw_port *p = &g->ports[i];
		struct gw_port *peer = &g->ports[p->peer];
		bool rss = port_can_rss(p, g->n_workers) && port_can_rss(peer, g->n_workers);

		p->rss = rss;
		p->n_queues = rss ? (uint16_t)g->n_workers : 1;
		if (p->dir == SKY_DIR_UP)
			p->out_slot = slot++;
	}
	for (unsigned int i = 0; i < g->n_ports; i++)
		if (port_configure(g, &g->ports[i], err, errlen) < 0)
			return -1;
	return 0;
}

void
gw_ports_stop(struct gw *g)
{
	for (unsigned int i = 0; i < g->n_ports; i++) {
		struct gw_port *p = &g->ports[i];

		if (!p->started)
			continue;
		rte_eth_dev_stop(p->port_id);
		rte_eth_dev_close(p->port_id);
		p->started = false;
	}
}

/*
 * Multi-queue pairs: worker w polls queue w of both ports. Single-queue pairs: the pair
 * (identified by its uplink port) goes to one worker, round robin over pairs.
 */
void
gw_workers_assign(struct gw *g)
{
	unsigned int pair = 0;

	for (unsigned int w = 0; w < g->n_workers; w++) {
		g->workers[w].n_rxq = 0;
		g->workers[w].n_out = 0;
	}
	for (unsigned int i = 0; i < g->n_ports; i++) {
		struct gw_port *p = &g->ports[i];
		unsigned int owner;

		if (p->dir != SKY_DIR_UP)
			continue;
		owner = pair++ % g->n_workers;
		for (unsigned int w = 0; w < g->n_workers; w++) {
			struct gw_worker *wk = &g->workers[w];
			uint16_t q;

			if (p->rss)
				q = (uint16_t)w;
			else if (w == owner)
				q = 0;
			else
				continue;
			wk->rxq[wk->n_rxq++] = (struct gw_rxq){.port = (uint16_t)i, .queue = q};
			wk->rxq[wk->n_rxq++] = (struct gw_rxq){.port = p->peer, .queue = q};
			wk->out[wk->n_out++] = (struct gw_rxq){.port = (uint16_t)i, .queue = q};
		}
	}
}
