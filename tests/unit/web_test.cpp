// SPDX-License-Identifier: BSD-3-Clause
// The web configuration (exporter-toolkit format), bcrypt checks, basic auth and base64, and the
// TLS relay in front of a plain TCP server, with a certificate made here with OpenSSL.
#include <arpa/inet.h>
#include <crypt.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "web/query.h"
#include "web/tls_relay.h"
#include "web/web_config.h"

using namespace weir::web;

namespace {

struct Dir {
    std::filesystem::path path;
    Dir() {
        char t[] = "/tmp/weir-web-test-XXXXXX";
        path = mkdtemp(t);
    }
    ~Dir() { std::filesystem::remove_all(path); }
    std::string write(const std::string& name, const std::string& text) const {
        std::ofstream(path / name) << text;
        return (path / name).string();
    }
};

// A self-signed certificate for 127.0.0.1 and its key, as PEM files in `d`.
void make_cert(const Dir& d, const std::string& name) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    ASSERT_NE(key, nullptr);
    X509* x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME* n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
    X509_set_issuer_name(x, n);
    ASSERT_GT(X509_sign(x, key, EVP_sha256()), 0);
    FILE* f = std::fopen((d.path / (name + ".crt")).c_str(), "w");
    PEM_write_X509(f, x);
    std::fclose(f);
    f = std::fopen((d.path / (name + ".key")).c_str(), "w");
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
}

std::string bcrypt(const std::string& pw, unsigned long cost = 4) {
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    EXPECT_NE(crypt_gensalt_rn("$2y$", cost, nullptr, 0, salt, sizeof(salt)), nullptr);
    crypt_data data{};
    return crypt_r(pw.c_str(), salt, &data);
}

std::string error_of(const std::string& path) {
    try {
        load(path);
    } catch (const WebConfigError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(WebConfig, ReadsTheExporterToolkitFormat) {
    Dir d;
    make_cert(d, "server");
    const std::string hash = bcrypt("pw");
    const std::string p =
        d.write("web.yml",
                "tls_server_config:\n  cert_file: server.crt\n  key_file: " + (d.path / "server.key").string() +
                    "\n  min_version: TLS13\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n"
                    "basic_auth_users:\n  alice: " +
                    hash + "\n  bob: '" + hash + "'\n");
    const WebConfig w = load(p);
    EXPECT_TRUE(w.tls);
    EXPECT_EQ(w.tls_config.cert_file, (d.path / "server.crt").string());  // relative to the file
    EXPECT_EQ(w.tls_config.min_version, TLS1_3_VERSION);
    ASSERT_EQ(w.users.size(), 2u);
    EXPECT_EQ(w.users[0].first, "alice");
    ASSERT_EQ(w.ignored.size(), 1u);
    EXPECT_EQ(w.ignored[0], "tls_server_config.cipher_suites (OpenSSL's defaults apply)");
    EXPECT_TRUE(load(d.write("empty.yml", "")).empty());
}

TEST(WebConfig, EveryProblemNamesItsKey) {
    Dir d;
    make_cert(d, "server");
    make_cert(d, "other");
    const std::string tls = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
    const std::pair<std::string, std::string> cases[] = {
        {"tls_server_config:\n  key_file: server.key\n", "tls_server_config.cert_file: required"},
        {"tls_server_config:\n  cert_file: server.crt\n  key_file: other.key\n",
         "tls_server_config.key_file: " + (d.path / "other.key").string() + " is not the key of " +
             (d.path / "server.crt").string()},
        {tls + "  min_version: TLS11\n", "tls_server_config.min_version: weir serves TLS 1.2 and 1.3 only"},
        {tls + "  min_version: SSL3\n", "tls_server_config.min_version: expected TLS10, TLS11, TLS12 or TLS13"},
        {tls + "  min_version: TLS13\n  max_version: TLS12\n", "tls_server_config.max_version: below min_version"},
        {tls + "  client_auth_type: VerifyClientCertIfGiven\n", "tls_server_config.client_ca_file: required"},
        {tls + "  client_allowed_sans: [a]\n", "tls_server_config.client_allowed_sans: not supported by weir"},
        {tls + "  tls_cert: x\n", "tls_server_config.tls_cert: unknown key"},
        {"basic_auth_users:\n  alice: secret\n", "basic_auth_users.alice: expected a bcrypt hash"},
        {"basic_auth_users: [alice]\n", "basic_auth_users: expected a mapping"},
        {"basic_auth_users:\n  [a]: b\n", "basic_auth_users: keys are plain words, not lists"},
        {"? {a: b}\n: c\n", "keys are plain words, not mappings"},
        {"http_server_config:\n  headers:\n    X-A: b\n", "http_server_config.headers: not supported by weir"},
        {"web: 1\n", "web: unknown key"},
        {"- 1\n", "expected a mapping"},
        {"basic_auth_users: {a\n", "not YAML: line 2"},
    };
    for (const auto& [text, want] : cases) {
        const std::string p = d.write("web.yml", text);
        EXPECT_EQ(error_of(p).rfind(p + ": " + want, 0), 0u) << text << " -> " << error_of(p);
    }
    EXPECT_EQ(error_of((d.path / "nosuch.yml").string()),
              (d.path / "nosuch.yml").string() + ": cannot read it: No such file or directory");
}

TEST(WebConfig, Bcrypt) {
    const std::string h = bcrypt("correct horse");
    EXPECT_TRUE(bcrypt_matches("correct horse", h));
    EXPECT_FALSE(bcrypt_matches("correct horse ", h));
    EXPECT_FALSE(bcrypt_matches("", h));
    EXPECT_FALSE(bcrypt_matches("x", "not a hash"));
}

TEST(WebConfig, Base64) {
    std::string out;
    EXPECT_TRUE(base64_decode("YWxpY2U6cHc=", out));
    EXPECT_EQ(out, "alice:pw");
    EXPECT_TRUE(base64_decode("YQ==", out));
    EXPECT_EQ(out, "a");
    EXPECT_TRUE(base64_decode("", out));
    EXPECT_FALSE(base64_decode("YQ=", out));
    EXPECT_FALSE(base64_decode("Y=Q=", out));
    EXPECT_FALSE(base64_decode("YQ==YQ==", out));
    EXPECT_FALSE(base64_decode("Y!==", out));
}

TEST(WebConfig, BasicAuth) {
    BasicAuth auth({{"alice", bcrypt("pw")}, {"bob", bcrypt("other")}});
    std::string who;
    EXPECT_FALSE(auth.allows(nullptr));
    EXPECT_FALSE(auth.allows("Bearer abc"));
    EXPECT_FALSE(auth.allows("Basic !!!!"));
    EXPECT_FALSE(auth.allows("Basic YWxpY2U="));      // alice, no colon
    EXPECT_FALSE(auth.allows("Basic YWxpY2U6eA=="));  // alice:x
    EXPECT_FALSE(auth.allows("Basic Ym9iOnB3"));      // bob:pw, alice's password
    EXPECT_FALSE(auth.allows("Basic ZXZlOnB3"));      // eve:pw, no such user
    EXPECT_TRUE(auth.allows("Basic YWxpY2U6cHc=", &who));
    EXPECT_EQ(who, "alice");
    EXPECT_FALSE(auth.allows("Basic YWxpY2U6cHcA"));      // alice:pw\0 (a fuzz finding: it passed)
    EXPECT_FALSE(auth.allows("Basic YWxpY2U6cHcAeHl6"));  // alice:pw\0xyz
    EXPECT_TRUE(auth.allows("Basic  YWxpY2U6cHc= "));  // remembered, spaces around
    EXPECT_TRUE(BasicAuth({}).allows(nullptr));        // no users: no authentication
}

// The relay in front of a one-shot TCP server: what a TLS client sends arrives in plain, the
// answer goes back; the server sees the relay's source port; a plain client gets nothing.
TEST(TlsRelay, RelaysBothWaysAndNamesItsPorts) {
    Dir d;
    make_cert(d, "server");
    Tls t;
    t.cert_file = (d.path / "server.crt").string();
    t.key_file = (d.path / "server.key").string();
    const int srv = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    ASSERT_EQ(bind(srv, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    ASSERT_EQ(listen(srv, 4), 0);
    getsockname(srv, reinterpret_cast<sockaddr*>(&a), &len);
    const uint16_t backend = ntohs(a.sin_port);

    // A free port for the relay.
    const int probe = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in r{};
    r.sin_family = AF_INET;
    r.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(probe, reinterpret_cast<sockaddr*>(&r), sizeof(r));
    len = sizeof(r);
    getsockname(probe, reinterpret_cast<sockaddr*>(&r), &len);
    close(probe);
    const uint16_t port = ntohs(r.sin_port);
    auto relay = std::make_unique<TlsRelay>("127.0.0.1:" + std::to_string(port), backend, t, 4, 2000);

    bool seen_as_relay = false;
    std::string got;
    std::thread server([&] {
        sockaddr_in peer{};
        socklen_t pl = sizeof(peer);
        const int c = accept(srv, reinterpret_cast<sockaddr*>(&peer), &pl);
        seen_as_relay = relay->from_relay(ntohs(peer.sin_port));
        char buf[64];
        const ssize_t n = recv(c, buf, sizeof(buf), 0);
        got.assign(buf, n > 0 ? static_cast<size_t>(n) : 0);
        send(c, "pong", 4, 0);
        close(c);
    });
    SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(cctx, t.cert_file.c_str(), nullptr);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, nullptr);
    const int c = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&r), sizeof(r)), 0);
    SSL* ssl = SSL_new(cctx);
    SSL_set_fd(ssl, c);
    ASSERT_EQ(SSL_connect(ssl), 1);
    ASSERT_EQ(SSL_write(ssl, "ping", 4), 4);
    char buf[16] = {};
    const int n = SSL_read(ssl, buf, sizeof(buf));
    server.join();
    EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), "pong");
    EXPECT_EQ(got, "ping");
    EXPECT_TRUE(seen_as_relay);
    EXPECT_FALSE(relay->from_relay(backend));
    SSL_free(ssl);
    close(c);
    SSL_CTX_free(cctx);

    // Plain bytes instead of a handshake: nothing reaches the server, the failure is counted.
    const int p = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_EQ(connect(p, reinterpret_cast<sockaddr*>(&r), sizeof(r)), 0);
    send(p, "GET / HTTP/1.1\r\n\r\n", 18, 0);
    char junk[64];
    while (recv(p, junk, sizeof(junk), 0) > 0) {}
    close(p);
    for (int i = 0; i < 100 && relay->handshakes_failed() == 0; ++i) usleep(10000);
    EXPECT_EQ(relay->handshakes_failed(), 1u);
    relay.reset();
    close(srv);
}

TEST(Query, FindsTheFirstPairAndDecodesIt) {
    using weir::web::query_value;
    EXPECT_EQ(query_value("by=packets&n=5", "n"), "5");
    EXPECT_EQ(query_value("n=1&n=2", "n"), "1");
    EXPECT_EQ(query_value("nn=1&n=2", "n"), "2");
    EXPECT_EQ(query_value("a=x+y%20z%2b", "a"), "x y z+");
    EXPECT_EQ(query_value("%6E=7", "n"), "7");  // the name is decoded too
    EXPECT_EQ(query_value("n", "n"), "");
    EXPECT_EQ(query_value("n=", "n"), "");
    EXPECT_EQ(query_value("n=%4", "n"), "%4");  // not an escape: kept
    EXPECT_EQ(query_value("n=%zz1", "n"), "%zz1");
    EXPECT_EQ(query_value("n=a=b", "n"), "a=b");
    EXPECT_EQ(query_value("", "n"), std::nullopt);
    EXPECT_EQ(query_value("&&", "n"), std::nullopt);
    EXPECT_EQ(query_value("N=1", "n"), std::nullopt);  // names are case-sensitive
    EXPECT_EQ(query_value("n=%00", "n"), std::string(1, '\0'));
}

TEST(Query, IntegersAreDigitsInRange) {
    long n = -7;
    std::string e;
    EXPECT_TRUE(weir::web::query_integer("", "n", 20, 1, 100, n, e));
    EXPECT_EQ(n, 20);
    EXPECT_TRUE(weir::web::query_integer("n=100", "n", 20, 1, 100, n, e));
    EXPECT_EQ(n, 100);
    for (const char* bad : {"n=101", "n=0", "n=-1", "n=+5", "n=%205", "n=5%20", "n=", "n", "n=5x",
                            "n=99999999999999999999999", "n=0x10"}) {
        e.clear();
        EXPECT_FALSE(weir::web::query_integer(bad, "n", 20, 1, 100, n, e)) << bad;
        EXPECT_EQ(e.rfind("n: expected 1..100, got \"", 0), 0u) << e;
    }
    EXPECT_FALSE(weir::web::query_integer("n=%ff%22%5c%0a", "n", 20, 1, 100, n, e));
    EXPECT_EQ(e, "n: expected 1..100, got \"\\xff\\x22\\x5c\\x0a\"");
}

TEST(Query, ChoicesAndQuotedValues) {
    std::string v, e;
    EXPECT_TRUE(weir::web::query_choice("x=1", "by", "bytes", {"bytes", "packets"}, v, e));
    EXPECT_EQ(v, "bytes");
    EXPECT_TRUE(weir::web::query_choice("by=packets", "by", "bytes", {"bytes", "packets"}, v, e));
    EXPECT_EQ(v, "packets");
    EXPECT_FALSE(weir::web::query_choice("by=%c3%28", "by", "bytes", {"bytes", "packets", "flows"}, v, e));
    EXPECT_EQ(e, "by: expected bytes, packets or flows, got \"\\xc3(\"");
    EXPECT_EQ(weir::web::printable(std::string(40, 'a'), 32), std::string(32, 'a') + "...");
    EXPECT_EQ(weir::web::printable("é"), "\\xc3\\xa9");
}
