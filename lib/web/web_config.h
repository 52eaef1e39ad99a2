// SPDX-License-Identifier: BSD-3-Clause
// The management server's TLS and HTTP basic authentication, from a web configuration file in
// the format Prometheus exporters use (prometheus/exporter-toolkit: tls_server_config,
// basic_auth_users with bcrypt hashes), so one file serves node_exporter and weir alike.
// No DPDK; control side only.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace weir::web {

enum class ClientAuth : uint8_t {
    kNone,              // NoClientCert
    kRequest,           // RequestClientCert: asked for, not checked
    kRequireAny,        // RequireAnyClientCert: required, not checked
    kVerifyIfGiven,     // VerifyClientCertIfGiven
    kRequireAndVerify,  // RequireAndVerifyClientCert
};

struct Tls {
    std::string cert_file, key_file;  // PEM; absolute (relative ones resolved against the file's folder)
    ClientAuth client_auth = ClientAuth::kNone;
    std::string client_ca_file;  // PEM bundle client certificates must chain to
    int min_version = 0x0303;    // TLS 1.2 (exporter-toolkit's default); 0x0301..0x0304
    int max_version = 0;         // 0: the highest OpenSSL has
};

struct WebConfig {
    std::string path;  // the file it came from
    bool tls = false;  // tls_server_config given
    Tls tls_config;
    std::vector<std::pair<std::string, std::string>> users;  // name, bcrypt hash
    std::vector<std::string> ignored;                        // keys read but without effect here, for the log
    bool empty() const { return !tls && users.empty(); }
};

class WebConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Reads and checks the file: YAML syntax, known keys only, the certificate, key and CA files
// readable, the hashes bcrypt. Throws WebConfigError "PATH: KEY: reason".
WebConfig load(const std::string& path);

// Whether `password` matches the bcrypt `hash` (libxcrypt's crypt_r; $2a$, $2b$, $2y$).
bool bcrypt_matches(const std::string& password, const std::string& hash);

// Checks "Authorization: Basic ..." header values against the users, from several threads.
// bcrypt is slow on purpose (cost 10: ~60 ms): a pair that matched once is remembered (as a
// SHA-256 of user, hash and password, never the password) so a scrape every few seconds costs
// one hash check at start. An unknown user costs a bcrypt check too (no timing difference).
class BasicAuth {
public:
    explicit BasicAuth(std::vector<std::pair<std::string, std::string>> users);
    bool on() const { return !users_.empty(); }
    // `header`: the Authorization header's value, or nullptr when there is none. On success
    // `user` names who it was.
    bool allows(const char* header, std::string* user = nullptr);

private:
    std::vector<std::pair<std::string, std::string>> users_;
    std::string nobody_;  // a hash of the users' cost, for names that are not users
    std::mutex mu_;
    std::unordered_set<std::string> good_;  // digests of pairs that matched
};

// Decodes standard base64 (with padding); false on anything else.
bool base64_decode(const std::string& in, std::string& out);

// Sets up an OpenSSL SSL_CTX (passed as void*, as civetweb's init_ssl gives it) from `t`: the
// certificate chain and key, protocol versions, client certificates. Returns "" or the reason.
std::string configure_tls(void* ssl_ctx, const Tls& t);

}  // namespace weir::web
