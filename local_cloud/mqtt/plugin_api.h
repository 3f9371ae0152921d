/*
 * The parts of mosquitto 2.0's plugin interface (mosquitto_broker.h, mosquitto_plugin.h,
 * mosquitto.h) and of OpenSSL that the broker plugin uses, declared here so that no -dev package is
 * needed: every symbol is resolved at load time against the mosquitto process (2.0.11, Debian),
 * which already links libcrypto. Shared by identity_plugin.c (connect and subscribe checks) and
 * presence.c (AWS IoT lifecycle events); see local_cloud/mqtt/README.md.
 */
#ifndef MLOPS_EDGE_PLUGIN_API_H
#define MLOPS_EDGE_PLUGIN_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- mosquitto 2.0 plugin interface ------------------------------------------------------- */
struct mosquitto;
typedef struct mqtt5__property mosquitto_property;
typedef struct mosquitto_plugin_id_t mosquitto_plugin_id_t;

struct mosquitto_opt {
	char *key;
	char *value;
};

struct mosquitto_evt_acl_check {
	void *future;
	struct mosquitto *client;
	const char *topic;
	const void *payload;
	mosquitto_property *properties;
	int access;
	uint32_t payloadlen;
	uint8_t qos;
	bool retain;
	void *future2[4];
};

struct mosquitto_evt_basic_auth {
	void *future;
	struct mosquitto *client;
	char *username;
	char *password;
	void *future2[4];
};

/* MOSQ_EVT_DISCONNECT: in 2.0 `reason` is always -1 (context__disconnect passes no reason). */
struct mosquitto_evt_disconnect {
	void *future;
	struct mosquitto *client;
	int reason;
	void *future2[4];
};

enum { MOSQ_EVT_ACL_CHECK = 2, MOSQ_EVT_BASIC_AUTH = 3, MOSQ_EVT_DISCONNECT = 10 };
enum {
	MOSQ_ERR_SUCCESS = 0,
	MOSQ_ERR_NOMEM = 1,
	MOSQ_ERR_INVAL = 3,
	MOSQ_ERR_AUTH = 11,
	MOSQ_ERR_ACL_DENIED = 12,
	MOSQ_ERR_PLUGIN_DEFER = 17,
};
#define MOSQ_ACL_SUBSCRIBE 0x04
#define MOSQ_LOG_NOTICE (1 << 1)
#define MOSQ_LOG_WARNING (1 << 2)

/* lib/mosquitto_internal.h: the states a client is in when MOSQ_EVT_DISCONNECT fires */
enum {
	MOSQ_CS_DISCONNECTING = 2,         /* it sent DISCONNECT (its will is cleared) */
	MOSQ_CS_DUPLICATE = 17,            /* another connection took its client id over */
	MOSQ_CS_DISCONNECT_WITH_WILL = 18, /* it sent DISCONNECT 0x04 (with will message) */
};

typedef int (*MOSQ_FUNC_generic_callback)(int, void *, void *);
int mosquitto_callback_register(mosquitto_plugin_id_t *identifier, int event,
		MOSQ_FUNC_generic_callback cb_func, const void *event_data, void *userdata);
int mosquitto_callback_unregister(mosquitto_plugin_id_t *identifier, int event,
		MOSQ_FUNC_generic_callback cb_func, const void *event_data);
const char *mosquitto_client_id(const struct mosquitto *client);
const char *mosquitto_client_address(const struct mosquitto *client);
const char *mosquitto_client_username(const struct mosquitto *client);
void *mosquitto_client_certificate(const struct mosquitto *client);
int mosquitto_set_username(struct mosquitto *client, const char *username);
int mosquitto_broker_publish_copy(const char *clientid, const char *topic, int payloadlen,
		const void *payload, int qos, bool retain, mosquitto_property *properties);
void mosquitto_log_printf(int level, const char *fmt, ...);
/* Not part of the plugin API, but exported by the broker binary (`nm -D`); weak, so the plugin
 * still loads where it is missing (the disconnect reason is then CONNECTION_LOST). */
int mosquitto__get_state(const struct mosquitto *client) __attribute__((weak));

/* ---- OpenSSL (libcrypto, already loaded by mosquitto) --------------------------------------- */
#define NID_commonName 13
void *X509_get_subject_name(const void *x);
int X509_NAME_get_index_by_NID(void *name, int nid, int lastpos);
void *X509_NAME_get_entry(const void *name, int loc);
void *X509_NAME_ENTRY_get_data(const void *ne);
const unsigned char *ASN1_STRING_get0_data(const void *x);
int ASN1_STRING_length(const void *x);
void X509_free(void *a);
const void *EVP_sha256(void);
int X509_digest(const void *data, const void *type, unsigned char *md, unsigned int *len);

/* ---- presence.c ------------------------------------------------------------------------------ */
/* A client passed the identity check: remember its connection, publish its connected event. */
void presence_connected(struct mosquitto *client, const char *client_id);
/* MOSQ_EVT_DISCONNECT callback: publish the disconnected event of a connection we announced. */
int presence_on_disconnect(int event, void *event_data, void *userdata);
/* Forget every connection (plugin cleanup). */
void presence_cleanup(void);

#endif
