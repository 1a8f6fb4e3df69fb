/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A small etcd v3 client over etcd's JSON gateway (POST /v3/kv/range, /v3/kv/put,
 * /v3/kv/txn, /v3/lease/..., /v3/watch), with libcurl for HTTP and jansson for JSON. Keys
 * and values travel base64-encoded; int64 fields come back as strings. Every unary call
 * has a deadline (connection included); the watch has a connect deadline and stops when
 * its caller's flag is set (checked by libcurl's progress callback several times a
 * second). Control path only: the cluster's thread, never a worker.
 *
 * Why not a C etcd v3 client library: none is packaged in Debian or kept up; the v3 JSON
 * gateway is part of etcd itself and stable since 3.4.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cluster_priv.h"

/* --- base64 --- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t
sky_b64_encode(const void *in, size_t n, char *out)
{
	const unsigned char *p = in;
	size_t o = 0, i;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		out[o++] = b64[v >> 18];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = b64[(v >> 6) & 63];
		out[o++] = b64[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);

		out[o++] = b64[v >> 18];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

static int
b64val(char c)
{
	const char *p = c != '\0' ? strchr(b64, c) : NULL;

	return p == NULL ? -1 : (int)(p - b64);
}

long
sky_b64_decode(const char *in, size_t n, void *out, size_t outlen)
{
	unsigned char *o = out;
	size_t w = 0;

	if (n % 4 != 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i += 4) {
		int v[4], pad = 0;

		for (int k = 0; k < 4; k++) {
			if (in[i + k] == '=' && i + 4 == n && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad > 0 || (v[k] = b64val(in[i + k])) < 0)
				return -EINVAL;
		}
		uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
			     (uint32_t)v[3];
		for (int k = 0; k < 3 - pad; k++) {
			if (w >= outlen)
				return -ENAMETOOLONG;
			o[w++] = (unsigned char)(x >> (16 - 8 * k));
		}
	}
	return (long)w;
}

int64_t
sky_etcd_i64(const json_t *v)
{
	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	return 0;
}

/* a base64 JSON string of s (n bytes) */
static json_t *
b64_json(const char *s, size_t n)
{
	char *buf = malloc(4 * (n / 3 + 1) + 1);
	json_t *j;

	if (buf == NULL)
		return NULL;
	sky_b64_encode(s, n, buf);
	j = json_string(buf);
	free(buf);
	return j;
}

/* the end of the range of keys starting with p: p with its last byte + 1 */
static json_t *
prefix_end(const char *p)
{
	size_t n = strlen(p);
	char *e = strdup(p);
	json_t *j;

	if (e == NULL)
		return NULL;
	while (n > 0 && (unsigned char)e[n - 1] == 0xff)
		n--;
	if (n == 0) {
		free(e);
		return json_string("AA=="); /* "\0": every key */
	}
	e[n - 1]++;
	j = b64_json(e, n);
	free(e);
	return j;
}

/* --- transport --- */

struct buf {
	char *p;
	size_t len, cap;
};

#define REPLY_MAX (64u << 20) /* bound on one reply: a snapshot of 1M subscribers fits */

static size_t
buf_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	size_t n = size * nmemb;

	if (b->len + n + 1 > REPLY_MAX)
		return 0; /* libcurl fails the transfer: CURLE_WRITE_ERROR */
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *q;

		while (cap < b->len + n + 1)
			cap *= 2;
		q = realloc(b->p, cap);
		if (q == NULL)
			return 0;
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}

static void
global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int
sky_etcd_init(struct sky_etcd *e, const char (*endpoints)[256], unsigned int n,
	      unsigned int timeout_ms)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	memset(e, 0, sizeof(*e));
	if (n == 0 || n > SKY_CLUSTER_MAX_ENDPOINTS)
		return -EINVAL;
	pthread_once(&once, global_init);
	for (unsigned int i = 0; i < n; i++)
		snprintf(e->endpoints[i], sizeof(e->endpoints[i]), "%s", endpoints[i]);
	e->n_endpoints = n;
	e->timeout_ms = timeout_ms;
	e->sock = -1;
	pthread_mutex_init(&e->sock_lock, NULL);
	e->curl = curl_easy_init();
	return e->curl == NULL ? -ENOMEM : 0;
}

void
sky_etcd_fini(struct sky_etcd *e)
{
	if (e->curl != NULL) {
		curl_easy_cleanup(e->curl);
		pthread_mutex_destroy(&e->sock_lock);
	}
	e->curl = NULL;
}

static int
curl_errno(CURLcode c)
{
	switch (c) {
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_ABORTED_BY_CALLBACK:
		return -EINTR;
	default:
		return -EIO;
	}
}

/* One POST to one endpoint; body: JSON text. 0 with the reply in b, or -errno. */
static int
post(struct sky_etcd *e, const char *url, const char *body, struct buf *b, long *status)
{
	CURL *h = e->curl;
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
	CURLcode c;

	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, buf_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)e->timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)e->timeout_ms);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	c = curl_easy_perform(h);
	curl_slist_free_all(hdr);
	if (c != CURLE_OK) {
		snprintf(e->err, sizeof(e->err), "%.300s: %s", url, curl_easy_strerror(c));
		return curl_errno(c);
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	return 0;
}

int
sky_etcd_call(struct sky_etcd *e, const char *path, const json_t *req, json_t **resp)
{
	char *body = json_dumps(req, JSON_COMPACT);
	struct buf b = {0};
	char url[512];
	long status = 0;
	int rc = -EIO;

	*resp = NULL;
	if (body == NULL)
		return -ENOMEM;
	/* the endpoint that answered last first, then the others */
	for (unsigned int t = 0; t < e->n_endpoints; t++) {
		unsigned int i = (e->cur + t) % e->n_endpoints;

		snprintf(url, sizeof(url), "%s/v3/%s", e->endpoints[i], path);
		b.len = 0;
		rc = post(e, url, body, &b, &status);
		if (rc == 0) {
			e->cur = i;
			break;
		}
	}
	free(body);
	if (rc != 0) {
		free(b.p);
		return rc;
	}
	json_error_t je;
	json_t *j = json_loadb(b.p ? b.p : "", b.len, 0, &je);

	if (j == NULL || !json_is_object(j)) {
		snprintf(e->err, sizeof(e->err), "%.300s: HTTP %ld, not a JSON object: %.100s", url,
			 status, b.p ? b.p : "");
		json_decref(j);
		free(b.p);
		return -EPROTO;
	}
	free(b.p);
	if (status != 200 || json_object_get(j, "error") != NULL) {
		const char *m = json_string_value(json_object_get(j, "error"));

		snprintf(e->err, sizeof(e->err), "%.300s: HTTP %ld: %.300s", url, status,
			 m ? m : json_string_value(json_object_get(j, "message")) ?: "error");
		json_decref(j);
		return -EPROTO;
	}
	/* streaming endpoints (lease keepalive) wrap their one reply in "result" */
	if (json_is_object(json_object_get(j, "result"))) {
		json_t *r = json_incref(json_object_get(j, "result"));

		json_decref(j);
		j = r;
	}
	*resp = j;
	return 0;
}

int
sky_etcd_range(struct sky_etcd *e, const char *key, bool prefix, int64_t rev, json_t **resp)
{
	return sky_etcd_range_to(e, key, prefix ? "" : NULL, rev, resp);
}

int
sky_etcd_range_to(struct sky_etcd *e, const char *key, const char *end, int64_t rev, json_t **resp)
{
	json_t *req = json_pack("{s:o}", "key", b64_json(key, strlen(key)));
	int rc;

	if (req == NULL)
		return -ENOMEM;
	if (end != NULL)
		json_object_set_new(req, "range_end",
				    end[0] ? b64_json(end, strlen(end)) : prefix_end(key));
	if (rev > 0)
		json_object_set_new(req, "revision", json_integer(rev));
	rc = sky_etcd_call(e, "kv/range", req, resp);
	json_decref(req);
	return rc;
}

static json_t *
put_req(const char *key, const char *val, int64_t lease)
{
	json_t *r = json_pack("{s:o, s:o}", "key", b64_json(key, strlen(key)), "value",
			      b64_json(val, strlen(val)));

	if (r != NULL && lease != 0)
		json_object_set_new(r, "lease", json_integer(lease));
	return r;
}

static int64_t
header_rev(const json_t *resp)
{
	return sky_etcd_i64(json_object_get(json_object_get(resp, "header"), "revision"));
}

int
sky_etcd_put(struct sky_etcd *e, const char *key, const char *val, int64_t lease, int64_t *rev)
{
	json_t *req = put_req(key, val, lease), *resp;
	int rc;

	if (req == NULL)
		return -ENOMEM;
	rc = sky_etcd_call(e, "kv/put", req, &resp);
	json_decref(req);
	if (rc == 0 && rev != NULL)
		*rev = header_rev(resp);
	json_decref(resp);
	return rc;
}

int
sky_etcd_delete(struct sky_etcd *e, const char *key, int64_t *rev)
{
	json_t *req = json_pack("{s:o}", "key", b64_json(key, strlen(key))), *resp;
	int rc;

	if (req == NULL)
		return -ENOMEM;
	rc = sky_etcd_call(e, "kv/deleterange", req, &resp);
	json_decref(req);
	if (rc == 0 && rev != NULL)
		*rev = header_rev(resp);
	json_decref(resp);
	return rc;
}

static int
txn(struct sky_etcd *e, json_t *compare, json_t *success, int *done, int64_t *rev)
{
	json_t *req = json_pack("{s:[o], s:[o]}", "compare", compare, "success", success), *resp;
	int rc;

	if (req == NULL)
		return -ENOMEM;
	rc = sky_etcd_call(e, "kv/txn", req, &resp);
	json_decref(req);
	if (rc == 0) {
		*done = json_is_true(json_object_get(resp, "succeeded"));
		if (rev != NULL)
			*rev = header_rev(resp);
	}
	json_decref(resp);
	return rc;
}

int
sky_etcd_put_if(struct sky_etcd *e, const char *key, const char *val, int64_t lease,
		int64_t mod_rev, int *done, int64_t *rev)
{
	/* "mod_revision": 0 compares equal to a key that does not exist */
	json_t *cmp = json_pack("{s:o, s:s, s:s, s:I}", "key", b64_json(key, strlen(key)), "target",
				"MOD", "result", "EQUAL", "mod_revision", (json_int_t)mod_rev);

	return txn(e, cmp, json_pack("{s:o}", "request_put", put_req(key, val, lease)), done, rev);
}

int
sky_etcd_put_when(struct sky_etcd *e, const char *guard, const char *guard_val, const char *key,
		  const char *val, int *done)
{
	json_t *cmp = json_pack("{s:o, s:s, s:s, s:o}", "key", b64_json(guard, strlen(guard)),
				"target", "VALUE", "result", "EQUAL", "value",
				b64_json(guard_val, strlen(guard_val)));

	return txn(e, cmp, json_pack("{s:o}", "request_put", put_req(key, val, 0)), done, NULL);
}

int
sky_etcd_delete_if(struct sky_etcd *e, const char *key, const char *val)
{
	json_t *cmp = json_pack("{s:o, s:s, s:s, s:o}", "key", b64_json(key, strlen(key)), "target",
				"VALUE", "result", "EQUAL", "value", b64_json(val, strlen(val)));
	int done;

	return txn(
		e, cmp,
		json_pack("{s:{s:o}}", "request_delete_range", "key", b64_json(key, strlen(key))),
		&done, NULL);
}

int
sky_etcd_lease_grant(struct sky_etcd *e, unsigned int ttl_s, int64_t *id)
{
	json_t *req = json_pack("{s:i}", "TTL", (int)ttl_s), *resp;
	int rc;

	rc = sky_etcd_call(e, "lease/grant", req, &resp);
	json_decref(req);
	if (rc == 0) {
		*id = sky_etcd_i64(json_object_get(resp, "ID"));
		if (*id == 0) {
			snprintf(e->err, sizeof(e->err), "lease grant: no ID in the reply");
			rc = -EPROTO;
		}
	}
	json_decref(resp);
	return rc;
}

int
sky_etcd_lease_keepalive(struct sky_etcd *e, int64_t id, int64_t *ttl)
{
	json_t *req = json_pack("{s:I}", "ID", (json_int_t)id), *resp;
	int rc;

	rc = sky_etcd_call(e, "lease/keepalive", req, &resp);
	json_decref(req);
	if (rc == 0)
		*ttl = sky_etcd_i64(json_object_get(resp, "TTL"));
	json_decref(resp);
	return rc;
}

int
sky_etcd_lease_revoke(struct sky_etcd *e, int64_t id)
{
	json_t *req = json_pack("{s:I}", "ID", (json_int_t)id), *resp;
	int rc;

	rc = sky_etcd_call(e, "lease/revoke", req, &resp);
	json_decref(req);
	json_decref(resp);
	return rc;
}

/* --- watch --- */

struct watch {
	struct sky_etcd *e;
	struct buf line;
	sky_etcd_watch_fn fn;
	void *arg;
	const volatile int *stop;
	int64_t compacted;
	int rc;	     /* set by a reply that ends the watch */
	int stopped; /* fn asked to stop */
};

static int
watch_reply(struct watch *w, const char *text, size_t len)
{
	json_error_t je;
	json_t *j = json_loadb(text, len, 0, &je), *r, *evs, *ev;
	char key[SKY_CLUSTER_KEY_MAX];
	size_t i;

	if (j == NULL) {
		snprintf(w->e->err, sizeof(w->e->err), "watch: bad JSON: %s", je.text);
		w->rc = -EPROTO;
		return -1;
	}
	r = json_object_get(j, "result");
	if (r == NULL) {
		snprintf(w->e->err, sizeof(w->e->err), "watch: %s",
			 json_string_value(json_object_get(json_object_get(j, "error"), "message"))
				 ?: "a reply without result");
		json_decref(j);
		w->rc = -EPROTO;
		return -1;
	}
	if (sky_etcd_i64(json_object_get(r, "compact_revision")) > 0) {
		w->compacted = sky_etcd_i64(json_object_get(r, "compact_revision"));
		snprintf(w->e->err, sizeof(w->e->err), "watch: revision compacted (oldest %lld)",
			 (long long)w->compacted);
		json_decref(j);
		w->rc = -ESTALE;
		return -1;
	}
	if (json_is_true(json_object_get(r, "canceled"))) {
		snprintf(w->e->err, sizeof(w->e->err), "watch: canceled by etcd: %s",
			 json_string_value(json_object_get(r, "cancel_reason")) ?: "");
		json_decref(j);
		w->rc = -ECANCELED;
		return -1;
	}
	evs = json_object_get(r, "events");
	json_array_foreach(evs, i, ev)
	{
		const json_t *kv = json_object_get(ev, "kv");
		const char *k64 = json_string_value(json_object_get(kv, "key"));
		const char *v64 = json_string_value(json_object_get(kv, "value"));
		struct sky_etcd_event e = {0};
		char *val;
		long n;

		if (k64 == NULL)
			continue;
		n = sky_b64_decode(k64, strlen(k64), key, sizeof(key) - 1);
		if (n < 0)
			continue; /* not one of ours: too long */
		key[n] = '\0';
		v64 = v64 ? v64 : "";
		val = malloc(strlen(v64) / 4 * 3 + 1);
		if (val == NULL)
			continue;
		n = sky_b64_decode(v64, strlen(v64), val, strlen(v64) / 4 * 3);
		val[n < 0 ? 0 : n] = '\0';
		e.del = strcmp(json_string_value(json_object_get(ev, "type")) ?: "", "DELETE") == 0;
		e.key = key;
		e.value = val;
		e.value_len = n < 0 ? 0 : (size_t)n;
		e.mod_rev = sky_etcd_i64(json_object_get(kv, "mod_revision"));
		if (w->fn(w->arg, &e, 0) != 0)
			w->stopped = 1;
		free(val);
		if (w->stopped)
			break;
	}
	if (!w->stopped && w->fn(w->arg, NULL, header_rev(r)) != 0)
		w->stopped = 1;
	json_decref(j);
	return w->stopped ? -1 : 0;
}

static size_t
watch_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct watch *w = arg;
	size_t n = size * nmemb;
	char *nl;

	if (buf_write(data, 1, n, &w->line) != n)
		return 0;
	/* one reply per line */
	while ((nl = memchr(w->line.p, '\n', w->line.len)) != NULL) {
		size_t l = (size_t)(nl - w->line.p);

		if (l > 0 && watch_reply(w, w->line.p, l) != 0)
			return 0;
		memmove(w->line.p, nl + 1, w->line.len - l - 1);
		w->line.len -= l + 1;
	}
	return n;
}

static int
watch_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	struct watch *w = arg;

	return *w->stop ? 1 : 0;
}

static curl_socket_t
watch_open(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct sky_etcd *e = arg;
	int fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);

	pthread_mutex_lock(&e->sock_lock);
	e->sock = fd;
	pthread_mutex_unlock(&e->sock_lock);
	return fd < 0 ? CURL_SOCKET_BAD : fd;
}

static int
watch_close(void *arg, curl_socket_t fd)
{
	struct sky_etcd *e = arg;

	/* forget it before it closes: its number may be reused at once */
	pthread_mutex_lock(&e->sock_lock);
	if (e->sock == fd)
		e->sock = -1;
	pthread_mutex_unlock(&e->sock_lock);
	return close(fd);
}

void
sky_etcd_watch_break(struct sky_etcd *e)
{
	if (e->curl == NULL)
		return;
	pthread_mutex_lock(&e->sock_lock);
	if (e->sock >= 0)
		shutdown(e->sock, SHUT_RDWR);
	pthread_mutex_unlock(&e->sock_lock);
}

int
sky_etcd_watch(struct sky_etcd *e, const char *prefix, const char *end, int64_t from_rev,
	       sky_etcd_watch_fn fn, void *arg, const volatile int *stop, int64_t *compacted)
{
	json_t *req = json_pack("{s:{s:o, s:o, s:I, s:b}}", "create_request", "key",
				b64_json(prefix, strlen(prefix)), "range_end",
				end != NULL ? b64_json(end, strlen(end)) : prefix_end(prefix),
				"start_revision", (json_int_t)from_rev, "prev_kv", 0);
	struct watch w = {.e = e, .fn = fn, .arg = arg, .stop = stop};
	struct curl_slist *hdr;
	char *body = json_dumps(req, JSON_COMPACT);
	char url[512];
	CURL *h = e->curl;
	CURLcode c;

	json_decref(req);
	if (body == NULL)
		return -ENOMEM;
	hdr = curl_slist_append(NULL, "Content-Type: application/json");
	snprintf(url, sizeof(url), "%s/v3/watch", e->endpoints[e->cur]);
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, watch_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &w);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)e->timeout_ms);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 2L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 1L);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, watch_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, &w);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, watch_open);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, e);
	curl_easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, watch_close);
	curl_easy_setopt(h, CURLOPT_CLOSESOCKETDATA, e);
	c = curl_easy_perform(h);
	curl_slist_free_all(hdr);
	free(body);
	free(w.line.p);
	if (w.rc != 0) {
		if (compacted != NULL)
			*compacted = w.compacted;
		return w.rc;
	}
	if (w.stopped || *stop)
		return 0;
	if (c == CURLE_OK) {
		snprintf(e->err, sizeof(e->err), "%.300s: the watch stream ended", url);
		return -EPIPE;
	}
	snprintf(e->err, sizeof(e->err), "%.300s: %s", url, curl_easy_strerror(c));
	/* the next watch tries the next endpoint */
	e->cur = (e->cur + 1) % e->n_endpoints;
	return curl_errno(c);
}
