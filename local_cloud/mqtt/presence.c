/*
 * AWS IoT lifecycle events from mosquitto 2.0: what IoT Core publishes when a client connects or
 * disconnects (developerguide/life-cycle-events.html), so that the cloud side can tell which
 * devices are online without waiting for a job to time out.
 *
 *   $aws/events/presence/connected/<clientId>
 *       {"clientId", "timestamp" (ms), "eventType": "connected", "sessionIdentifier",
 *        "principalIdentifier", "ipAddress", "versionNumber"}
 *   $aws/events/presence/disconnected/<clientId>
 *       {"clientId", "timestamp", "eventType": "disconnected", "sessionIdentifier",
 *        "principalIdentifier", "clientInitiatedDisconnect", "disconnectReason", "versionNumber"}
 *
 * A connection is announced when it passes the identity check (identity_plugin.c's BASIC_AUTH
 * callback; the check mosquitto runs again on every connected client when it reloads its
 * configuration on SIGHUP, as broker.py makes it do for each new device, announces nothing); only
 * announced connections get a disconnected event, so a refused CONNECT produces neither. sessionIdentifier is 128 random bits per connection, principalIdentifier the SHA-256 of
 * the client certificate's DER (the certificate id IoT's RegisterCertificate gives), versionNumber
 * the same for a connection's two events and increasing from one connection to the next (seeded
 * from the clock, so it keeps increasing across broker restarts). The disconnect reason comes from
 * the state mosquitto left the client in: DISCONNECT sent -> CLIENT_INITIATED_DISCONNECT, session
 * taken over -> DUPLICATE_CLIENTID, anything else (socket closed, keep-alive expired, protocol
 * error) -> CONNECTION_LOST, since mosquitto 2.0 passes no reason to plugins.
 *
 * Messages are queued with mosquitto_broker_publish_copy (QoS 1) and delivered by the broker's main
 * loop to subscribers the ACL lets read $aws/events/... (only the privileged identities; a device's
 * SUBSCRIBE there is refused by identity_plugin.c). Client ids containing '+' or '#' get no events,
 * as on AWS.
 */
#include <sys/random.h>
#include <time.h>

#include "plugin_api.h"

#define BUCKETS 4096
#define EVENT_BYTES 1536
#define TOPIC_BYTES 512

struct connection {
	struct connection *next;
	const struct mosquitto *client;
	char *client_id;
	char session[33];
	char principal[65];
	long long version;
};

static struct connection *table[BUCKETS];
static long long last_version;

static size_t bucket(const struct mosquitto *client)
{
	return ((uintptr_t)client >> 4) % BUCKETS;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void hex(char *out, const unsigned char *bytes, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	for(size_t i = 0; i < n; i++){
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 15];
	}
	out[2 * n] = '\0';
}

static void new_session_id(char out[33])
{
	unsigned char bytes[16];
	if(getrandom(bytes, sizeof(bytes), 0) != (ssize_t)sizeof(bytes)){
		long long t = now_ms();
		memset(bytes, 0, sizeof(bytes));
		memcpy(bytes, &t, sizeof(t));
		memcpy(bytes + sizeof(t), &last_version, sizeof(last_version));
	}
	hex(out, bytes, sizeof(bytes));
}

/* SHA-256 of the certificate's DER, lower-case hex: the certificate id as IoT computes it. */
static void principal_of(const struct mosquitto *client, char out[65])
{
	unsigned char md[32];
	unsigned int len = 0;
	void *cert = mosquitto_client_certificate(client);
	out[0] = '\0';
	if(!cert) return;
	if(X509_digest(cert, EVP_sha256(), md, &len) == 1 && len == sizeof(md)) hex(out, md, sizeof(md));
	X509_free(cert);
}

/* A JSON string body (without quotes) of in; false if it does not fit. */
static bool json_escape(char *out, size_t size, const char *in)
{
	size_t o = 0;
	for(const unsigned char *p = (const unsigned char *)in; *p; p++){
		char buf[8];
		const char *piece = buf;
		if(*p == '"' || *p == '\\'){
			buf[0] = '\\';
			buf[1] = (char)*p;
			buf[2] = '\0';
		}else if(*p < 0x20){
			snprintf(buf, sizeof(buf), "\\u%04x", *p);
		}else{
			buf[0] = (char)*p;
			buf[1] = '\0';
		}
		size_t n = strlen(piece);
		if(o + n >= size) return false;
		memcpy(out + o, piece, n);
		o += n;
	}
	out[o] = '\0';
	return true;
}

static void publish(const char *kind, const char *client_id, const char *payload, int len)
{
	char topic[TOPIC_BYTES];
	int n = snprintf(topic, sizeof(topic), "$aws/events/presence/%s/%s", kind, client_id);
	if(n < 0 || (size_t)n >= sizeof(topic) || len < 0 || len >= EVENT_BYTES) return;
	if(mosquitto_broker_publish_copy(NULL, topic, len, payload, 1, false, NULL) != MOSQ_ERR_SUCCESS){
		mosquitto_log_printf(MOSQ_LOG_WARNING, "presence: could not publish %s", topic);
	}
}

void presence_connected(struct mosquitto *client, const char *client_id)
{
	char id[TOPIC_BYTES], payload[EVENT_BYTES];
	const char *address = mosquitto_client_address(client);
	struct connection *c;
	long long now = now_ms();

	if(strpbrk(client_id, "+#") || !json_escape(id, sizeof(id), client_id)) return;
	for(c = table[bucket(client)]; c; c = c->next){
		/* a SIGHUP makes mosquitto check every connected client again: not a new connection */
		if(c->client == client && !strcmp(c->client_id, client_id)) return;
	}
	c = calloc(1, sizeof(*c));
	if(!c || !(c->client_id = strdup(client_id))){
		free(c);
		return;
	}
	c->client = client;
	new_session_id(c->session);
	principal_of(client, c->principal);
	last_version = c->version = now > last_version ? now : last_version + 1;
	c->next = table[bucket(client)];
	table[bucket(client)] = c;

	int len = snprintf(payload, sizeof(payload),
			"{\"clientId\":\"%s\",\"timestamp\":%lld,\"eventType\":\"connected\","
			"\"sessionIdentifier\":\"%s\",\"principalIdentifier\":\"%s\",\"ipAddress\":\"%s\","
			"\"versionNumber\":%lld}",
			id, now, c->session, c->principal, address ? address : "", c->version);
	publish("connected", client_id, payload, len);
}

static struct connection *take(const struct mosquitto *client)
{
	for(struct connection **link = &table[bucket(client)]; *link; link = &(*link)->next){
		if((*link)->client == client){
			struct connection *found = *link;
			*link = found->next;
			return found;
		}
	}
	return NULL;
}

int presence_on_disconnect(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_disconnect *ed = event_data;
	char id[TOPIC_BYTES], payload[EVENT_BYTES];
	struct connection *c = take(ed->client);
	(void)event;
	(void)userdata;

	if(!c) return MOSQ_ERR_SUCCESS; /* refused at CONNECT, or not announced */
	int state = mosquitto__get_state ? mosquitto__get_state(ed->client) : -1;
	bool by_client = state == MOSQ_CS_DISCONNECTING || state == MOSQ_CS_DISCONNECT_WITH_WILL;
	const char *reason = by_client ? "CLIENT_INITIATED_DISCONNECT"
			: state == MOSQ_CS_DUPLICATE ? "DUPLICATE_CLIENTID" : "CONNECTION_LOST";
	if(json_escape(id, sizeof(id), c->client_id)){
		int len = snprintf(payload, sizeof(payload),
				"{\"clientId\":\"%s\",\"timestamp\":%lld,\"eventType\":\"disconnected\","
				"\"sessionIdentifier\":\"%s\",\"principalIdentifier\":\"%s\","
				"\"clientInitiatedDisconnect\":%s,\"disconnectReason\":\"%s\",\"versionNumber\":%lld}",
				id, now_ms(), c->session, c->principal, by_client ? "true" : "false", reason,
				c->version);
		publish("disconnected", c->client_id, payload, len);
	}
	free(c->client_id);
	free(c);
	return MOSQ_ERR_SUCCESS;
}

void presence_cleanup(void)
{
	for(size_t i = 0; i < BUCKETS; i++){
		while(table[i]){
			struct connection *c = table[i];
			table[i] = c->next;
			free(c->client_id);
			free(c);
		}
	}
}
