// SPDX-License-Identifier: BSD-3-Clause
#include "web/web_config.h"

#include <crypt.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

namespace weir::web {
namespace {

std::string openssl_error() {
    const unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (!e) return "OpenSSL gave no reason";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    return buf;
}

int version_of(const std::string& s) {
    if (s == "TLS10") return TLS1_VERSION;
    if (s == "TLS11") return TLS1_1_VERSION;
    if (s == "TLS12") return TLS1_2_VERSION;
    if (s == "TLS13") return TLS1_3_VERSION;
    return -1;
}

bool is_bcrypt(const std::string& h) {
    return h.size() == 60 && h[0] == '$' && h[1] == '2' && (h[2] == 'a' || h[2] == 'b' || h[2] == 'y') && h[3] == '$';
}

std::string sha256(const std::string& s) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(s.data(), s.size(), md, &n, EVP_sha256(), nullptr);
    return std::string(reinterpret_cast<char*>(md), n);
}

// Any certificate will do (RequestClientCert, RequireAnyClientCert): the chain is not checked.
int accept_any(int, X509_STORE_CTX*) { return 1; }

void read(const YAML::Node& root, const std::string& path, WebConfig& w);

}  // namespace

WebConfig load(const std::string& path) {
    WebConfig w;
    w.path = path;
    auto fail = [&](const std::string& key, const std::string& why) -> WebConfigError {
        return WebConfigError(path + ": " + (key.empty() ? "" : key + ": ") + why);
    };
    YAML::Node root;
    try {
        root = YAML::LoadFile(path);
    } catch (const YAML::BadFile&) {
        throw fail("", std::string("cannot read it: ") + std::strerror(errno));
    } catch (const YAML::Exception& e) {
        throw fail("",
                   "not YAML: line " + std::to_string(e.mark.line + 1) + ", column " +
                       std::to_string(e.mark.column + 1) + ": " + e.msg);
    }
    try {
        read(root, path, w);
    } catch (const YAML::Exception& e) {
        // A value of a kind no key takes (a mapping as a key, say) that the checks above let by.
        throw fail("", std::string("cannot read it: ") + e.what());
    }
    return w;
}

namespace {

void read(const YAML::Node& root, const std::string& path, WebConfig& w) {
    auto fail = [&](const std::string& key, const std::string& why) -> WebConfigError {
        return WebConfigError(path + ": " + (key.empty() ? "" : key + ": ") + why);
    };
    if (root.IsNull()) return;  // an empty file: plain HTTP, no authentication
    auto name_of = [&](const YAML::Node& key, const std::string& where) {
        if (!key.IsScalar())
            throw fail(where, "keys are plain words, not " + std::string(key.IsMap() ? "mappings" : "lists"));
        return key.as<std::string>();
    };
    if (!root.IsMap()) throw fail("", "expected a mapping of tls_server_config, http_server_config, basic_auth_users");
    const std::filesystem::path dir = std::filesystem::path(path).parent_path();
    auto file = [&](const std::string& key, const YAML::Node& v) {
        if (!v.IsScalar() || v.as<std::string>().empty()) throw fail(key, "expected a file name");
        std::filesystem::path p = v.as<std::string>();
        if (p.is_relative()) p = dir / p;  // as the exporters do: relative to this file
        std::ifstream f(p);
        if (!f) throw fail(key, "cannot read " + p.string() + ": " + std::strerror(errno));
        return p.string();
    };
    auto scalar = [&](const std::string& key, const YAML::Node& v) {
        if (!v.IsScalar()) throw fail(key, "expected a string");
        return v.as<std::string>();
    };
    for (const auto& top : root) {
        const std::string k = name_of(top.first, "");
        const YAML::Node& v = top.second;
        if (k == "tls_server_config") {
            if (v.IsNull()) continue;
            if (!v.IsMap()) throw fail(k, "expected a mapping");
            w.tls = true;
            Tls& t = w.tls_config;
            std::string auth;
            for (const auto& e : v) {
                const std::string name = name_of(e.first, k);
                const std::string key = k + "." + name;
                if (name == "cert_file")
                    t.cert_file = file(key, e.second);
                else if (name == "key_file")
                    t.key_file = file(key, e.second);
                else if (name == "client_ca_file")
                    t.client_ca_file = file(key, e.second);
                else if (name == "client_auth_type")
                    auth = scalar(key, e.second);
                else if (name == "min_version" || name == "max_version") {
                    const int ver = version_of(scalar(key, e.second));
                    if (ver < 0) throw fail(key, "expected TLS10, TLS11, TLS12 or TLS13");
                    if (name == "min_version" && ver < TLS1_2_VERSION)
                        throw fail(key, "weir serves TLS 1.2 and 1.3 only");
                    (name == "min_version" ? t.min_version : t.max_version) = ver;
                } else if (name == "cipher_suites" || name == "curve_preferences" ||
                           name == "prefer_server_cipher_suites") {
                    // Go's names; OpenSSL's defaults (no weak suites) apply instead.
                    w.ignored.push_back(key + " (OpenSSL's defaults apply)");
                } else if (name == "cert" || name == "key" || name == "client_allowed_sans") {
                    throw fail(key,
                               "not supported by weir: use cert_file/key_file; client_allowed_sans has no "
                               "equivalent (use a client CA of its own)");
                } else {
                    throw fail(key, "unknown key");
                }
            }
            if (t.cert_file.empty()) throw fail(k + ".cert_file", "required");
            if (t.key_file.empty()) throw fail(k + ".key_file", "required");
            if (auth.empty() || auth == "NoClientCert")
                t.client_auth = ClientAuth::kNone;
            else if (auth == "RequestClientCert")
                t.client_auth = ClientAuth::kRequest;
            else if (auth == "RequireAnyClientCert")
                t.client_auth = ClientAuth::kRequireAny;
            else if (auth == "VerifyClientCertIfGiven")
                t.client_auth = ClientAuth::kVerifyIfGiven;
            else if (auth == "RequireAndVerifyClientCert")
                t.client_auth = ClientAuth::kRequireAndVerify;
            else
                throw fail(k + ".client_auth_type",
                           "expected NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven "
                           "or RequireAndVerifyClientCert, got \"" +
                               auth + "\"");
            const bool verify =
                t.client_auth == ClientAuth::kVerifyIfGiven || t.client_auth == ClientAuth::kRequireAndVerify;
            if (verify && t.client_ca_file.empty())
                throw fail(k + ".client_ca_file", "required to verify client certificates (" + auth + ")");
            if (t.max_version && t.max_version < t.min_version) throw fail(k + ".max_version", "below min_version");
            // The certificate and key are loaded here already, so that a wrong file stops weir at
            // start (and --check) instead of at the first connection.
            std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
            if (!ctx) throw fail(k, "cannot make a TLS context: " + openssl_error());
            const std::string why = configure_tls(ctx.get(), t);
            if (!why.empty()) throw fail("", why);
        } else if (k == "http_server_config") {
            if (v.IsNull()) continue;
            if (!v.IsMap()) throw fail(k, "expected a mapping");
            for (const auto& e : v) {
                const std::string name = name_of(e.first, k);
                const std::string key = k + "." + name;
                if (name == "http2")
                    w.ignored.push_back(key + " (weir answers HTTP/1.1)");
                else
                    throw fail(key, name == "headers" ? "not supported by weir" : "unknown key");
            }
        } else if (k == "basic_auth_users") {
            if (v.IsNull()) continue;
            if (!v.IsMap()) throw fail(k, "expected a mapping of user names to bcrypt hashes");
            for (const auto& e : v) {
                const std::string user = name_of(e.first, k);
                const std::string key = k + "." + user;
                const std::string hash = scalar(key, e.second);
                if (user.empty() || user.find(':') != std::string::npos)
                    throw fail(key, "a user name is not empty and has no ':'");
                if (!is_bcrypt(hash))
                    throw fail(key, "expected a bcrypt hash ($2y$..., 60 characters; htpasswd -nBC 10 USER)");
                w.users.emplace_back(user, hash);
            }
        } else {
            throw fail(k, "unknown key (expected tls_server_config, http_server_config, basic_auth_users)");
        }
    }
}

}  // namespace

bool bcrypt_matches(const std::string& password, const std::string& hash) {
    auto data = std::make_unique<crypt_data>();  // ~32 KiB: not on a server thread's stack
    const char* out = crypt_r(password.c_str(), hash.c_str(), data.get());
    if (!out || out[0] == '*' || std::strlen(out) != hash.size()) return false;
    unsigned char diff = 0;  // the same time whatever matches
    for (size_t i = 0; i < hash.size(); ++i) diff |= static_cast<unsigned char>(out[i] ^ hash[i]);
    return diff == 0;
}

bool base64_decode(const std::string& in, std::string& out) {
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    out.clear();
    if (in.size() % 4) return false;
    for (size_t i = 0; i < in.size(); i += 4) {
        int v[4];
        int pad = 0;
        for (int j = 0; j < 4; ++j) {
            const char c = in[i + j];
            if (c == '=' && i + 4 == in.size() && j >= 2) {
                v[j] = 0;
                ++pad;
            } else if (pad || (v[j] = value(c)) < 0) {
                return false;
            }
        }
        const uint32_t n = static_cast<uint32_t>(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
        out += static_cast<char>(n >> 16);
        if (pad < 2) out += static_cast<char>(n >> 8 & 0xFF);
        if (pad < 1) out += static_cast<char>(n & 0xFF);
    }
    return true;
}

BasicAuth::BasicAuth(std::vector<std::pair<std::string, std::string>> users) : users_(std::move(users)) {
    if (users_.empty()) return;
    const unsigned long cost = std::strtoul(users_.front().second.c_str() + 4, nullptr, 10);
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    auto data = std::make_unique<crypt_data>();
    if (crypt_gensalt_rn("$2y$", cost, nullptr, 0, salt, sizeof(salt)))
        if (const char* h = crypt_r("weir: no such user", salt, data.get()); h && h[0] != '*') nobody_ = h;
}

bool BasicAuth::allows(const char* header, std::string* who) {
    if (users_.empty()) return true;
    if (!header || std::strncmp(header, "Basic ", 6) != 0) return false;
    std::string h = header + 6;
    while (!h.empty() && h.front() == ' ') h.erase(h.begin());
    while (!h.empty() && h.back() == ' ') h.pop_back();
    std::string decoded;
    if (!base64_decode(h, decoded)) return false;
    // bcrypt hashes a C string: a password with a NUL in it would be checked only up to the NUL
    // ("pw\0x" passing for "pw"). No user or password has one.
    if (decoded.find('\0') != std::string::npos) return false;
    const auto colon = decoded.find(':');
    if (colon == std::string::npos) return false;
    const std::string user = decoded.substr(0, colon), password = decoded.substr(colon + 1);
    // A user that does not exist is checked against a hash of its own, so that the answer takes
    // as long as for one that does.
    const std::string* hash = &nobody_;
    for (const auto& [u, hh] : users_)
        if (u == user) hash = &hh;
    const std::string digest = sha256(user + '\0' + *hash + '\0' + password);
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (good_.count(digest)) {
            if (who) *who = user;
            return true;
        }
    }
    if (hash == &nobody_) {
        bcrypt_matches(password, *hash);
        return false;
    }
    if (!bcrypt_matches(password, *hash)) return false;
    std::lock_guard<std::mutex> lock(mu_);
    if (good_.size() >= 1024) good_.clear();
    good_.insert(digest);
    if (who) *who = user;
    return true;
}

std::string configure_tls(void* p, const Tls& t) {
    auto* ctx = static_cast<SSL_CTX*>(p);
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(ctx, t.cert_file.c_str()) != 1)
        return "tls_server_config.cert_file: " + t.cert_file + ": " + openssl_error();
    if (SSL_CTX_use_PrivateKey_file(ctx, t.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
        if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
            ERR_clear_error();
            return "tls_server_config.key_file: " + t.key_file + " is not the key of " + t.cert_file;
        }
        return "tls_server_config.key_file: " + t.key_file + ": " + openssl_error();
    }
    if (SSL_CTX_check_private_key(ctx) != 1)
        return "tls_server_config.key_file: " + t.key_file + " is not the key of " + t.cert_file;
    if (SSL_CTX_set_min_proto_version(ctx, t.min_version) != 1)
        return "tls_server_config.min_version: " + openssl_error();
    if (t.max_version && SSL_CTX_set_max_proto_version(ctx, t.max_version) != 1)
        return "tls_server_config.max_version: " + openssl_error();
    if (!t.client_ca_file.empty()) {
        if (SSL_CTX_load_verify_locations(ctx, t.client_ca_file.c_str(), nullptr) != 1)
            return "tls_server_config.client_ca_file: " + t.client_ca_file + ": " + openssl_error();
        if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(t.client_ca_file.c_str()))
            SSL_CTX_set_client_CA_list(ctx, names);
    }
    switch (t.client_auth) {
        case ClientAuth::kNone: SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr); break;
        case ClientAuth::kRequest: SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any); break;
        case ClientAuth::kRequireAny:
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, accept_any);
            break;
        case ClientAuth::kVerifyIfGiven: SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr); break;
        case ClientAuth::kRequireAndVerify:
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
            break;
    }
    return "";
}

}  // namespace weir::web
