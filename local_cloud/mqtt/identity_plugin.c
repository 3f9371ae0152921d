/*
 * mosquitto 2.0 plugin (plugin API v5): the parts of an AWS IoT policy that mosquitto's own
 * configuration cannot express. See local_cloud/mqtt/README.md for why a plugin is needed.
 *
 *   iot:Connect on client/${iot:Connection.Thing.ThingName}
 *       A client may connect only with its certificate's identity (the certificate's common name)
 *       as client id, or, for an identity given a client-id prefix, with an id that starts with
 *       that prefix. Anything else is refused in CONNACK (MQTT 5: 0x87 Not authorized; MQTT 3.1.1:
 *       5 not authorized) before mosquitto looks the id up, so no session can be taken over.
 *       The username mosquitto sees (and the acl_file's %u) is the certificate's common name.
 *
 *   iot:Subscribe on topicfilter/edge/${iot:Connection.Thing.ThingName}/<anything>
 *       A non-privileged identity may subscribe only to filters that start with one of its own
 *       topic prefixes; anything else ('#', another thing's topics) gets a failure code in SUBACK
 *       (MQTT 5: 0x87 Not authorized; MQTT 3.1.1: 0x80). mosquitto's acl_file grants every
 *       SUBSCRIBE ("FIXME - implement ACL subscription strings" in 2.0) and only filters delivery.
 *
 * Publish and receive (iot:Publish / iot:Receive) stay with the acl_file: this plugin defers them.
 *
 * Options (mosquitto.conf):
 *   plugin_opt_privileged <identity>       may subscribe to any filter (repeatable, or a,b,c)
 *   plugin_opt_client_prefix <identity>=<prefix>   extra client ids for an identity (repeatable)
 *   plugin_opt_own_topics <prefix>,<prefix>        %u = the identity, e.g. edge/%u/,$aws/things/%u/
 *
 * A connection that passes the CONNECT check is announced as an AWS IoT lifecycle event, and so
 * is its end (presence.c).
 *
 * Built by local_cloud/mqtt/plugin.py with the system C compiler, together with presence.c. The
 * declarations in plugin_api.h are copied from mosquitto 2.0's mosquitto_broker.h,
 * mosquitto_plugin.h and mosquitto.h (and the few OpenSSL functions used), so that no -dev package
 * is needed; every symbol is resolved at load time against the mosquitto process, which already
 * links libcrypto.
 */
#include "plugin_api.h"

/* ---- the policy --------------------------------------------------------------------------- */
#define MAX_ENTRIES 32
#define MAX_NAME 256

struct policy {
	mosquitto_plugin_id_t *id;
	int n_privileged;
	char *privileged[MAX_ENTRIES];
	int n_prefixes;
	char *prefix_identity[MAX_ENTRIES];
	char *prefix[MAX_ENTRIES];
	int n_own;
	char *own_topics[MAX_ENTRIES];
};

static struct policy policy;

static char *dup_n(const char *s, size_t n)
{
	char *out = malloc(n + 1);
	if(out){
		memcpy(out, s, n);
		out[n] = '\0';
	}
	return out;
}

/* Split "a,b,c" and append each non-empty part to list. */
static int add_list(char **list, int *count, const char *value)
{
	const char *start = value;
	for(;;){
		const char *end = strchr(start, ',');
		size_t len = end ? (size_t)(end - start) : strlen(start);
		if(len > 0){
			if(*count >= MAX_ENTRIES) return MOSQ_ERR_INVAL;
			list[*count] = dup_n(start, len);
			if(!list[*count]) return MOSQ_ERR_NOMEM;
			(*count)++;
		}
		if(!end) return MOSQ_ERR_SUCCESS;
		start = end + 1;
	}
}

/* The certificate's common name into out; false if there is none or it does not fit. */
static bool certificate_cn(const struct mosquitto *client, char *out, size_t size)
{
	void *cert = mosquitto_client_certificate(client);
	bool ok = false;
	if(!cert) return false;
	void *name = X509_get_subject_name(cert);
	int i = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
	if(i >= 0){
		void *data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
		if(data){
			int len = ASN1_STRING_length(data);
			const unsigned char *bytes = ASN1_STRING_get0_data(data);
			/* no empty name, no embedded NUL, room for the terminator */
			if(len > 0 && (size_t)len < size && memchr(bytes, '\0', (size_t)len) == NULL){
				memcpy(out, bytes, (size_t)len);
				out[len] = '\0';
				ok = true;
			}
		}
	}
	X509_free(cert);
	return ok;
}

static bool is_privileged(const char *identity)
{
	for(int i = 0; i < policy.n_privileged; i++){
		if(!strcmp(policy.privileged[i], identity)) return true;
	}
	return false;
}

static bool client_id_allowed(const char *identity, const char *client_id)
{
	if(!strcmp(identity, client_id)) return true;
	for(int i = 0; i < policy.n_prefixes; i++){
		size_t n = strlen(policy.prefix[i]);
		if(!strcmp(policy.prefix_identity[i], identity)
				&& strlen(client_id) > n && !strncmp(client_id, policy.prefix[i], n)){
			return true;
		}
	}
	return false;
}

/* Does filter start with pattern, where %u in pattern stands for identity? */
static bool starts_with_own(const char *filter, const char *pattern, const char *identity)
{
	const char *f = filter;
	for(const char *p = pattern; *p; p++){
		if(p[0] == '%' && p[1] == 'u'){
			size_t n = strlen(identity);
			if(strncmp(f, identity, n)) return false;
			f += n;
			p++;
		}else if(*f++ != *p){
			return false;
		}
	}
	return true;
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;
	char identity[MAX_NAME];
	const char *client_id = mosquitto_client_id(ed->client);
	(void)event;
	(void)userdata;

	if(!certificate_cn(ed->client, identity, sizeof(identity))){
		mosquitto_log_printf(MOSQ_LOG_WARNING,
				"identity: refused client id '%s': no usable certificate common name",
				client_id ? client_id : "");
		return MOSQ_ERR_AUTH;
	}
	if(!client_id || !client_id_allowed(identity, client_id)){
		mosquitto_log_printf(MOSQ_LOG_WARNING,
				"identity: refused CONNECT: certificate '%s' may not use client id '%s'",
				identity, client_id ? client_id : "");
		return MOSQ_ERR_AUTH;
	}
	/* whatever username the client sent, the identity is its certificate's */
	if(mosquitto_set_username(ed->client, identity) != MOSQ_ERR_SUCCESS) return MOSQ_ERR_AUTH;
	presence_connected(ed->client, client_id);
	return MOSQ_ERR_SUCCESS;
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	const char *identity;
	(void)event;
	(void)userdata;

	if(ed->access != MOSQ_ACL_SUBSCRIBE) return MOSQ_ERR_PLUGIN_DEFER;
	identity = mosquitto_client_username(ed->client);
	if(!identity) return MOSQ_ERR_ACL_DENIED;
	if(is_privileged(identity)) return MOSQ_ERR_SUCCESS;
	for(int i = 0; i < policy.n_own; i++){
		if(starts_with_own(ed->topic, policy.own_topics[i], identity)) return MOSQ_ERR_SUCCESS;
	}
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "identity: refused SUBSCRIBE of '%s' to '%s'",
			identity, ed->topic);
	return MOSQ_ERR_ACL_DENIED;
}

/* ---- entry points ------------------------------------------------------------------------- */
int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	for(int i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5) return 5;
	}
	return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
		struct mosquitto_opt *options, int option_count)
{
	int rc = MOSQ_ERR_SUCCESS;
	memset(&policy, 0, sizeof(policy));
	policy.id = identifier;
	*userdata = &policy;
	for(int i = 0; i < option_count && rc == MOSQ_ERR_SUCCESS; i++){
		const char *key = options[i].key, *value = options[i].value;
		if(!strcmp(key, "privileged")){
			rc = add_list(policy.privileged, &policy.n_privileged, value);
		}else if(!strcmp(key, "own_topics")){
			rc = add_list(policy.own_topics, &policy.n_own, value);
		}else if(!strcmp(key, "client_prefix")){
			const char *eq = strchr(value, '=');
			if(!eq || eq == value || !eq[1] || policy.n_prefixes >= MAX_ENTRIES){
				rc = MOSQ_ERR_INVAL;
			}else{
				policy.prefix_identity[policy.n_prefixes] = dup_n(value, (size_t)(eq - value));
				policy.prefix[policy.n_prefixes] = dup_n(eq + 1, strlen(eq + 1));
				policy.n_prefixes++;
			}
		}
	}
	if(rc != MOSQ_ERR_SUCCESS){
		mosquitto_log_printf(MOSQ_LOG_WARNING, "identity: bad plugin options");
		return rc;
	}
	rc = mosquitto_callback_register(identifier, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, &policy);
	if(rc == MOSQ_ERR_SUCCESS){
		rc = mosquitto_callback_register(identifier, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, &policy);
	}
	if(rc == MOSQ_ERR_SUCCESS){
		rc = mosquitto_callback_register(identifier, MOSQ_EVT_DISCONNECT, presence_on_disconnect,
				NULL, &policy);
	}
	return rc;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	(void)userdata;
	(void)options;
	(void)option_count;
	mosquitto_callback_unregister(policy.id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
	mosquitto_callback_unregister(policy.id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
	mosquitto_callback_unregister(policy.id, MOSQ_EVT_DISCONNECT, presence_on_disconnect, NULL);
	presence_cleanup();
	for(int i = 0; i < policy.n_privileged; i++) free(policy.privileged[i]);
	for(int i = 0; i < policy.n_own; i++) free(policy.own_topics[i]);
	for(int i = 0; i < policy.n_prefixes; i++){
		free(policy.prefix_identity[i]);
		free(policy.prefix[i]);
	}
	memset(&policy, 0, sizeof(policy));
	return MOSQ_ERR_SUCCESS;
}
