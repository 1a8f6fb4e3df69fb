/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * classify: traffic classes (the `classes:` section) and the rules that put each packet in
 * one. Classes are a configuration concept shared by the whole pipeline: plans weigh them
 * (lib/subscriber), the shaper queues by them, policies name them. So this module sits
 * below lib/subscriber: it depends on config, control and core only, and the subscriber
 * model takes its class names, count and default from sky_class_set_parse().
 *
 * Class index = priority, 0 highest, the order of `classes:`. At most SKY_MAX_CLASSES
 * classes and 63 rules over all classes. Semantics: classes are tried in list order, a
 * class matches when any of its rules matches; each shorthand key (dscp, protocol, ports,
 * prefixes) at class level is a rule of its own, each entry of `match:` is one rule whose
 * fields must all match. `ports` matches when sport or dport is in the set (packets
 * without ports never match a ports rule); `prefixes` match the remote address. The class
 * with `default: true` takes every packet no other class matched (its own rules, if any,
 * are tried at its position like any other). `queue` and `aqm` belong to the shaper and
 * are accepted here unchecked.
 *
 * Control path: sky_class_set_parse() validates the section; sky_classify_create()
 * compiles the rules into per-field tables of rule bitmaps; `class reload` (or
 * sky_classify_reload()) compiles a new set aside, publishes one pointer and frees the old
 * tables after sky_rcu_sync(). Class names, count, order and the default are fixed for the
 * life of the process (they are indexes for the shaper and the counters): a reload that
 * changes them is refused.
 * Data path: sky_classify_burst() sets meta->cls; a few table loads per packet, no
 * allocation, no lock (tests/bench/bench_classify.c prints the cycles).
 */
#ifndef SKYGATE_CLASSIFY_H
#define SKYGATE_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skygate/config.h"
#include "skygate/meta.h"

#define SKY_MAX_CLASSES 8 /* class index = priority, 0 highest; order of `classes:` */
#define SKY_NAME_MAX 32	  /* names of classes, plans and beams, NUL included */

struct sky_class {
	char name[SKY_NAME_MAX];
	bool is_default;
};

/** The rules of a class set (private to lib/classify). */
struct sky_class_rules;

/** The `classes:` section, parsed and validated (control path). */
struct sky_class_set {
	unsigned int n_classes;
	struct sky_class cls[SKY_MAX_CLASSES];
	int default_cls;	       /* index of the class with default: true */
	struct sky_class_rules *rules; /* owned: sky_class_set_free() */
};

/**
 * Parse and validate the `classes` section of cfg into out (absent section: one default
 * class "default"). Returns 0, or -1 with err filled ("FILE:LINE: PATH: reason") and
 * nothing left to free.
 */
int sky_class_set_parse(const struct sky_cfg *cfg, struct sky_cfg_err *err,
			struct sky_class_set *out);
/** Free what sky_class_set_parse() allocated (the rules). Safe twice. */
void sky_class_set_free(struct sky_class_set *cs);

struct sky_classifier;

/**
 * Build the classifier from the `classes` section of cfg (control path). n_classes: the
 * number of classes the rest of the model was built with (sky_subs_n_classes()); the
 * section must define as many (0: no check). Returns NULL with err filled on a bad section,
 * a mismatch, or a lack of memory.
 */
struct sky_classifier *sky_classify_create(const struct sky_cfg *cfg, unsigned int n_classes,
					   struct sky_cfg_err *err);
/** Register `class reload` (re-reads the rules from config_path) and `class list`. Control
 *  path, once. Returns 0 or -errno. */
int sky_classify_register(struct sky_classifier *c, const char *config_path);
/** Free everything (control path, after the workers stopped). NULL is fine. */
void sky_classify_destroy(struct sky_classifier *c);
/**
 * What `class reload` does: re-read the rules from the config file at path (class names,
 * order and default must not change), compile aside, RCU swap. 0, or -1 with err filled
 * (the running rules stay).
 */
int sky_classify_reload(struct sky_classifier *c, const char *path, char *err, size_t errlen);

/**
 * Data path: set meta->cls of every live packet (sky_meta_live()): the class of the first
 * matching rule in config order, else the default class. Reads the published tables once
 * per burst.
 */
void sky_classify_burst(struct sky_classifier *c, unsigned int worker, struct sky_meta *meta,
			uint16_t n);

#endif /* SKYGATE_CLASSIFY_H */
