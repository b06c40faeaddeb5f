#ifndef PRITHVI_CCURL_SHIM_H
#define PRITHVI_CCURL_SHIM_H
#include <curl/curl.h>
#include <netinet/in.h>
#include <string.h>

// curl_easy_setopt is variadic, which Swift cannot call; one typed wrapper per argument kind.
static inline CURLcode shim_curl_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode shim_curl_setopt_string(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode shim_curl_setopt_pointer(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode shim_curl_setopt_offset(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }
typedef size_t (*shim_curl_write_callback)(char *, size_t, size_t, void *);
static inline CURLcode shim_curl_setopt_write_function(CURL *h, shim_curl_write_callback f) { return curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, f); }
typedef int (*shim_curl_xferinfo_callback)(void *, curl_off_t, curl_off_t, curl_off_t, curl_off_t);
static inline CURLcode shim_curl_setopt_xferinfo_function(CURL *h, shim_curl_xferinfo_callback f) { return curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, f); }
static inline CURLcode shim_curl_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode shim_curl_getinfo_offset(CURL *h, CURLINFO i, curl_off_t *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode shim_curl_getinfo_string(CURL *h, CURLINFO i, char **v) { return curl_easy_getinfo(h, i, v); }
typedef curl_socket_t (*shim_curl_opensocket_callback)(void *, curlsocktype, struct curl_sockaddr *);
static inline CURLcode shim_curl_setopt_opensocket_function(CURL *h, shim_curl_opensocket_callback f) { return curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, f); }
// The IPv4 (4 bytes) or IPv6 (16 bytes) address curl is about to connect to; 0 for other families.
// `addr` holds addrlen bytes (curl allocates a sockaddr_storage behind it).
static inline int shim_curl_sockaddr_ip(const struct curl_sockaddr *a, unsigned char out[16]) {
    if (a->family == AF_INET && a->addrlen >= sizeof(struct sockaddr_in)) { memcpy(out, &((const struct sockaddr_in *)(const void *)&a->addr)->sin_addr, 4); return 4; }
    if (a->family == AF_INET6 && a->addrlen >= sizeof(struct sockaddr_in6)) { memcpy(out, &((const struct sockaddr_in6 *)(const void *)&a->addr)->sin6_addr, 16); return 16; }
    return 0;
}
#endif
