/* SPDX-License-Identifier: Apache-2.0 */
/* HTTP/1.1 server glue: sockets, peer identity, body collection, thread pool (libmicrohttpd). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <sodium.h>

#include "atrest/cleanup.h"
#include "atrest/httpd.h"
#include "atrest/log.h"

#define HTTPD_DEFAULT_THREADS 4
#define HTTPD_DEFAULT_TIMEOUT 30
#define HTTPD_DEFAULT_MAX_CONNECTIONS 1024
#define HTTPD_PEM_MAX (1024 * 1024)

struct httpd {
	struct MHD_Daemon *daemon;
	httpd_handler_fn handler;
	void *userdata;
	size_t max_body;
	bool is_unix;
	bool require_client_cert;
	char *unix_path;
	unsigned port;
	/* PEM buffers must outlive the daemon; the key sits in secure memory. */
	char *cert_pem;
	char *key_pem;
	char *ca_pem;
};

struct httpd_header {
	char *name;
	char *value;
};

struct httpd_response {
	int status;
	bool sensitive;
	char *content_type;
	char *body;
	size_t body_len;
	struct httpd_header *headers;
	size_t n_headers;
};

/* Per-request state kept by MHD between calls of the access handler. */
struct request_state {
	char *body;
	size_t len;
	size_t cap;
	bool too_large;
};

void httpd_response_set_status(struct httpd_response *resp, int status)
{
	resp->status = status;
}

void httpd_response_set_sensitive(struct httpd_response *resp)
{
	resp->sensitive = true;
}

/* A body to wipe when libmicrohttpd is done with it. */
struct sensitive_body {
	char *data;
	size_t len;
};

static void sensitive_body_free(void *cls)
{
	struct sensitive_body *b = cls;

	sodium_memzero(b->data, b->len);
	free(b->data);
	free(b);
}

static void body_free(char *body, size_t len, bool sensitive)
{
	if (body && sensitive)
		sodium_memzero(body, len);
	free(body);
}

int httpd_response_add_header(struct httpd_response *resp, const char *name, const char *value)
{
	struct httpd_header *h;

	h = realloc(resp->headers, (resp->n_headers + 1) * sizeof(*h));
	if (!h)
		return -ENOMEM;
	resp->headers = h;
	h[resp->n_headers].name = strdup(name);
	h[resp->n_headers].value = strdup(value);
	if (!h[resp->n_headers].name || !h[resp->n_headers].value) {
		free(h[resp->n_headers].name);
		free(h[resp->n_headers].value);
		return -ENOMEM;
	}
	resp->n_headers++;
	return 0;
}

int httpd_response_set_body(struct httpd_response *resp, const char *content_type, char *body,
			    size_t len)
{
	char *ct = NULL;

	if (content_type) {
		ct = strdup(content_type);
		if (!ct) {
			body_free(body, len, resp->sensitive);
			return -ENOMEM;
		}
	}
	free(resp->content_type);
	body_free(resp->body, resp->body_len, resp->sensitive);
	resp->content_type = ct;
	resp->body = body;
	resp->body_len = body ? len : 0;
	return 0;
}

int httpd_response_set_json(struct httpd_response *resp, const char *content_type,
			    const json_t *json)
{
	char *text = json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY);

	if (!text)
		return -ENOMEM;
	return httpd_response_set_body(resp, content_type ? content_type : "application/json",
				       text, strlen(text));
}

static void response_clear(struct httpd_response *resp)
{
	for (size_t i = 0; i < resp->n_headers; i++) {
		free(resp->headers[i].name);
		free(resp->headers[i].value);
	}
	free(resp->headers);
	free(resp->content_type);
	body_free(resp->body, resp->body_len, resp->sensitive);
	memset(resp, 0, sizeof(*resp));
}

const char *httpd_request_header(const struct httpd_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND, name);
}

const char *httpd_request_query(const struct httpd_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->connection, MHD_GET_ARGUMENT_KIND, name);
}

struct query_iter {
	int (*fn)(const char *key, const char *value, void *userdata);
	void *userdata;
	int r;
};

static enum MHD_Result query_iter_cb(void *cls, enum MHD_ValueKind kind, const char *key,
				     const char *value)
{
	struct query_iter *it = cls;

	(void)kind;
	it->r = it->fn(key, value ? value : "", it->userdata);
	return it->r == 0 ? MHD_YES : MHD_NO;
}

int httpd_request_query_foreach(const struct httpd_request *req,
				int (*fn)(const char *key, const char *value, void *userdata),
				void *userdata)
{
	struct query_iter it = { .fn = fn, .userdata = userdata, .r = 0 };

	MHD_get_connection_values(req->connection, MHD_GET_ARGUMENT_KIND, query_iter_cb, &it);
	return it.r;
}

/* Reads a PEM file whole; the TLS key goes into sodium_malloc memory. */
static int read_pem(const char *path, bool secret, char **ret)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	char *buf;
	size_t done = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return log_debug_errno(errno, "cannot open '%s'", path);
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > HTTPD_PEM_MAX)
		return log_debug_errno(EINVAL, "'%s' is not a PEM file of sane size", path);
	buf = secret ? sodium_malloc((size_t)st.st_size + 1) : malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);

		if (n <= 0) {
			int r = n < 0 ? -errno : -EIO;

			if (secret)
				sodium_free(buf);
			else
				free(buf);
			return r;
		}
		done += (size_t)n;
	}
	buf[done] = '\0';
	*ret = buf;
	return 0;
}

/* Splits "HOST:PORT" or "[V6]:PORT" into its parts (caller frees *ret_host). */
static int parse_listen(const char *listen_spec, char **ret_host, char **ret_port)
{
	const char *colon;
	char *host, *port;

	if (listen_spec[0] == '[') {
		const char *end = strchr(listen_spec, ']');

		if (!end || end[1] != ':')
			return -EINVAL;
		host = strndup(listen_spec + 1, (size_t)(end - listen_spec - 1));
		colon = end + 1;
	} else {
		colon = strrchr(listen_spec, ':');
		if (!colon)
			return -EINVAL;
		host = strndup(listen_spec, (size_t)(colon - listen_spec));
	}
	if (!host)
		return -ENOMEM;
	if (colon[1] == '\0' || strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
		free(host);
		return -EINVAL;
	}
	port = strdup(colon + 1);
	if (!port) {
		free(host);
		return -ENOMEM;
	}
	*ret_host = host;
	*ret_port = port;
	return 0;
}

static int bind_tcp(const char *listen_spec, unsigned *ret_port)
{
	_cleanup_free_ char *host = NULL, *port = NULL;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *ai = NULL;
	int fd = -1, r;

	r = parse_listen(listen_spec, &host, &port);
	if (r < 0)
		return r;
	r = getaddrinfo(*host ? host : NULL, port, &hints, &ai);
	if (r != 0)
		return log_debug_errno(EADDRNOTAVAIL, "cannot resolve '%s': %s", listen_spec,
				       gai_strerror(r));
	r = -EADDRNOTAVAIL;
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		int one = 1;

		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0) {
			r = -errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0)
			break;
		r = -errno;
		fd = safe_close(fd);
	}
	freeaddrinfo(ai);
	if (fd < 0)
		return r;

	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		*ret_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
							   : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

/* Removes a stale socket file; refuses when something still answers on it. */
static int clear_stale_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	_cleanup_close_ int fd = -1;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return log_debug_errno(EEXIST, "'%s' exists and is not a socket", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return log_debug_errno(EADDRINUSE, "'%s' is in use by a running server", path);
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

static int bind_unix(const char *path, mode_t mode)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, r;
	mode_t old;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	r = clear_stale_socket(path);
	if (r < 0)
		return r;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* The socket must never exist with wider permissions, not even briefly. */
	old = umask(~mode & 0777);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || chmod(path, mode) < 0 || listen(fd, SOMAXCONN) < 0) {
		r = -errno;
		safe_close(fd);
		return r;
	}
	return fd;
}

/* Copies a DN/SAN component of the verified client certificate, if any. */
static void peer_from_tls(struct MHD_Connection *c, struct httpd_peer *peer)
{
	const union MHD_ConnectionInfo *ci;
	gnutls_session_t session;
	const gnutls_datum_t *certs;
	unsigned n_certs = 0, status = 0;
	gnutls_x509_crt_t crt;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (!ci || !ci->tls_session)
		return;
	session = ci->tls_session;
	if (gnutls_certificate_verify_peers2(session, &status) != GNUTLS_E_SUCCESS || status != 0)
		return;
	certs = gnutls_certificate_get_peers(session, &n_certs);
	if (!certs || n_certs == 0)
		return;
	if (gnutls_x509_crt_init(&crt) != GNUTLS_E_SUCCESS)
		return;
	if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == GNUTLS_E_SUCCESS) {
		size_t len = sizeof(peer->cert_cn);

		if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0,
						  peer->cert_cn, &len) != GNUTLS_E_SUCCESS)
			peer->cert_cn[0] = '\0';
		for (unsigned i = 0;; i++) {
			char san[sizeof(peer->cert_uri)];
			size_t sl = sizeof(san) - 1;
			int t = gnutls_x509_crt_get_subject_alt_name(crt, i, san, &sl, NULL);

			if (t < 0)
				break;
			if (t == GNUTLS_SAN_URI) {
				san[sl] = '\0';
				memcpy(peer->cert_uri, san, sl + 1);
				break;
			}
		}
		peer->is_tls = true;
	}
	gnutls_x509_crt_deinit(crt);
}

static void peer_from_connection(struct httpd *h, struct MHD_Connection *c,
				 struct httpd_peer *peer)
{
	const union MHD_ConnectionInfo *ci;

	memset(peer, 0, sizeof(*peer));
	peer->uid = (uid_t)-1;
	peer->gid = (gid_t)-1;
	if (h->is_unix) {
		struct ucred cred;
		socklen_t len = sizeof(cred);

		ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci && getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
			peer->is_unix = true;
			peer->uid = cred.uid;
			peer->gid = cred.gid;
			peer->pid = cred.pid;
		}
		return;
	}
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr) {
		const struct sockaddr *sa = ci->client_addr;

		if (sa->sa_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, peer->addr,
				  sizeof(peer->addr));
		else if (sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
				  peer->addr, sizeof(peer->addr));
	}
	if (h->cert_pem)
		peer_from_tls(c, peer);
}

static enum MHD_Result queue(struct MHD_Connection *c, struct httpd_response *resp)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	int status = resp->status ? resp->status : 500;

	if (resp->sensitive && resp->body) {
		struct sensitive_body *b = malloc(sizeof(*b));

		if (!b)
			return MHD_NO; /* response_clear() wipes the body */
		b->data = resp->body;
		b->len = resp->body_len;
		r = MHD_create_response_from_buffer_with_free_callback_cls(
			resp->body_len, resp->body, sensitive_body_free, b);
		if (!r) {
			free(b);
			return MHD_NO;
		}
	} else {
		r = MHD_create_response_from_buffer(resp->body_len, resp->body,
						    MHD_RESPMEM_MUST_FREE);
		if (!r)
			return MHD_NO;
	}
	resp->body = NULL; /* MHD frees it now */
	if (resp->content_type && resp->body_len > 0)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
	for (size_t i = 0; i < resp->n_headers; i++)
		MHD_add_response_header(r, resp->headers[i].name, resp->headers[i].value);
	ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Both daemons speak oneM2M result codes, so the refusal carries one too. */
static enum MHD_Result refuse_no_certificate(struct MHD_Connection *c)
{
	struct httpd_response resp = { .status = 403 };
	const char *msg = "{\"m2m:dbg\":\"a client certificate trusted by this server is required\"}";
	enum MHD_Result ret;

	if (httpd_response_set_body(&resp, "application/json", strdup(msg), strlen(msg)) < 0 ||
	    httpd_response_add_header(&resp, "X-M2M-RSC", "4106") < 0 ||
	    httpd_response_add_header(&resp, "Connection", "close") < 0) {
		response_clear(&resp);
		return MHD_NO;
	}
	ret = queue(c, &resp);
	response_clear(&resp);
	return ret;
}

static bool body_append(struct request_state *st, size_t max, const char *data, size_t len)
{
	if (st->too_large || len > max - st->len) {
		st->too_large = true;
		free(st->body);
		st->body = NULL;
		st->len = st->cap = 0;
		return false;
	}
	if (st->len + len + 1 > st->cap) {
		size_t cap = st->cap ? st->cap : 4096;
		char *b;

		while (cap < st->len + len + 1)
			cap = cap > max / 2 ? max + 1 : cap * 2;
		b = realloc(st->body, cap);
		if (!b)
			return false;
		st->body = b;
		st->cap = cap;
	}
	memcpy(st->body + st->len, data, len);
	st->len += len;
	st->body[st->len] = '\0';
	return true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct httpd *h = cls;
	struct request_state *st = *con_cls;
	struct httpd_request req = { 0 };
	struct httpd_response resp = { .status = 500 };
	enum MHD_Result ret;
	int r;

	(void)version;
	if (!st) {
		const char *cl;

		st = calloc(1, sizeof(*st));
		if (!st)
			return MHD_NO;
		*con_cls = st;
		/* Refuse an oversized body before reading a byte of it. */
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						 MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > h->max_body)
			st->too_large = true;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		if (!st->too_large && !body_append(st, h->max_body, upload_data, *upload_data_size) &&
		    !st->too_large)
			return MHD_NO; /* out of memory: drop the connection */
		*upload_data_size = 0;
		return MHD_YES;
	}

	req.method = method;
	req.path = url;
	req.body = st->too_large ? NULL : st->body;
	req.body_len = st->too_large ? 0 : st->len;
	req.body_too_large = st->too_large;
	req.connection = c;
	peer_from_connection(h, c, &req.peer);
	if (h->require_client_cert && !req.peer.is_tls)
		return refuse_no_certificate(c);

	r = h->handler(h->userdata, &req, &resp);
	if (r < 0) {
		log_debug_errno(r, "handler failed for %s '%s'", method, url);
		response_clear(&resp);
		resp.status = 500;
	}
	if (st->too_large)
		httpd_response_add_header(&resp, "Connection", "close");
	ret = queue(c, &resp);
	response_clear(&resp);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct request_state *st = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (st) {
		free(st->body);
		free(st);
		*con_cls = NULL;
	}
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_debug("libmicrohttpd: %s", msg);
}

static void httpd_free(struct httpd *h)
{
	if (!h)
		return;
	if (h->key_pem)
		sodium_free(h->key_pem);
	free(h->cert_pem);
	free(h->ca_pem);
	free(h->unix_path);
	free(h);
}

int httpd_start(const struct httpd_config *config, httpd_handler_fn handler, void *userdata,
		struct httpd **ret)
{
	struct httpd *h;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	unsigned threads = config->threads ? config->threads : HTTPD_DEFAULT_THREADS;
	int fd, r;

	if (!!config->unix_path == !!config->listen)
		return -EINVAL;
	if (sodium_init() < 0)
		return -EIO;
	if (!!config->tls_cert != !!config->tls_key || (config->tls_ca && !config->tls_cert) ||
	    (config->tls_cert && config->unix_path))
		return -EINVAL;

	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->handler = handler;
	h->userdata = userdata;
	h->max_body = config->max_body;

	if (config->tls_cert) {
		r = read_pem(config->tls_cert, false, &h->cert_pem);
		if (r >= 0)
			r = read_pem(config->tls_key, true, &h->key_pem);
		if (r >= 0 && config->tls_ca)
			r = read_pem(config->tls_ca, false, &h->ca_pem);
		if (r < 0) {
			httpd_free(h);
			return r;
		}
		h->require_client_cert = !!config->tls_ca;
		flags |= MHD_USE_TLS;
	}

	if (config->unix_path) {
		h->is_unix = true;
		h->unix_path = strdup(config->unix_path);
		if (!h->unix_path) {
			httpd_free(h);
			return -ENOMEM;
		}
		fd = bind_unix(config->unix_path, config->unix_mode ? config->unix_mode : 0600);
	} else
		fd = bind_tcp(config->listen, &h->port);
	if (fd < 0) {
		httpd_free(h);
		return fd;
	}

	/* Options that do not apply are simply absent: MHD ends the list at MHD_OPTION_END. */
	struct MHD_OptionItem opts[] = {
		/* first: MHD logs through the default logger until it sees it */
		{ MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, NULL },
		{ MHD_OPTION_LISTEN_SOCKET, fd, NULL },
		{ MHD_OPTION_THREAD_POOL_SIZE, threads, NULL },
		{ MHD_OPTION_CONNECTION_TIMEOUT,
		  config->timeout_sec ? config->timeout_sec : HTTPD_DEFAULT_TIMEOUT, NULL },
		{ MHD_OPTION_CONNECTION_LIMIT,
		  config->max_connections ? config->max_connections
					  : HTTPD_DEFAULT_MAX_CONNECTIONS,
		  NULL },
		{ MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, NULL },
		{ h->cert_pem ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, h->cert_pem },
		{ h->key_pem ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, h->key_pem },
		{ h->ca_pem ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, 0, h->ca_pem },
		{ MHD_OPTION_END, 0, NULL },
	};
	/* Compact the list so an absent TLS option does not end it early. */
	size_t n = 0;
	for (size_t i = 0; i < ELEMENTSOF(opts); i++)
		if (opts[i].option != MHD_OPTION_END)
			opts[n++] = opts[i];
	opts[n] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };

	h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_ARRAY, opts,
				     MHD_OPTION_END);
	if (!h->daemon) {
		safe_close(fd);
		if (h->unix_path)
			unlink(h->unix_path);
		httpd_free(h);
		return log_debug_errno(EIO, "libmicrohttpd refused to start");
	}
	*ret = h;
	return 0;
}

struct httpd *httpd_stop(struct httpd *h)
{
	if (!h)
		return NULL;
	if (h->daemon)
		MHD_stop_daemon(h->daemon);
	if (h->unix_path)
		unlink(h->unix_path);
	httpd_free(h);
	return NULL;
}

unsigned httpd_port(const struct httpd *h)
{
	return h ? h->port : 0;
}
