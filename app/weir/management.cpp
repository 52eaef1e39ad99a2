// SPDX-License-Identifier: BSD-3-Clause
#include "management.h"

#include <civetweb.h>

#include <cstring>
#include <stdexcept>

#include "common/log.h"
#include "metrics/page.h"
#include <string>

namespace weir {
namespace {

int reply(mg_connection* c, int code, const char* type, const std::string& body, const char* allow = "GET, HEAD") {
    const char* reason = code == 200 ? "OK"
        : code == 400                ? "Bad Request"
        : code == 401                ? "Unauthorized"
        : code == 403                ? "Forbidden"
        : code == 405                ? "Method Not Allowed"
        : code == 413                ? "Payload Too Large"
        : code == 503                ? "Service Unavailable"
                                     : "Internal Server Error";
    mg_printf(c,
              "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
              "%s%s%s%sConnection: close\r\n\r\n",
              code, reason, type, body.size(), code == 405 ? "Allow: " : "", code == 405 ? allow : "",
              code == 405 ? "\r\n" : "",
              code == 401 ? "WWW-Authenticate: Basic realm=\"weir\", charset=\"UTF-8\"\r\n" : "");
    if (std::strcmp(mg_get_request_info(c)->request_method, "HEAD") != 0) mg_write(c, body.data(), body.size());
    return code;
}

int reply_json(mg_connection* c, int code, const nlohmann::json& j) {
    return reply(c, code, "application/json", j.dump(2) + "\n");
}

bool is(const mg_request_info* ri, const char* method) { return std::strcmp(ri->request_method, method) == 0; }

// No endpoint takes a body: one over this is refused (413) before anything reads it. Headers
// over civetweb's 16 KiB are refused by civetweb itself (400).
constexpr long long kMaxBody = 4096;

// 0 when the request may go on; else the status it was answered with. The read-only endpoints
// answer GET and HEAD, /reload POST; any other method is 405, not a silent read.
int admit(mg_connection* c, bool post) {
    if (!static_cast<Management*>(mg_get_user_data(mg_get_context(c)))->authorized(c)) return 401;
    const mg_request_info* ri = mg_get_request_info(c);
    if (post ? !is(ri, "POST") : !(is(ri, "GET") || is(ri, "HEAD")))
        return reply(c, 405, "application/json",
                     nlohmann::json{{"error", post ? "use POST" : "use GET"}}.dump(2) + "\n",
                     post ? "POST" : "GET, HEAD");
    if (ri->content_length > kMaxBody) {
        std::string e = "request body of ";
        e += std::to_string(ri->content_length);
        e += " bytes: no endpoint takes more than ";
        e += std::to_string(kMaxBody);
        return reply_json(c, 413, {{"error", e}});
    }
    return 0;
}

int on_metrics(mg_connection* c, void* cb) {
    if (const int r = admit(c, false)) return r;
    auto& rt = *static_cast<Runtime*>(cb);
    return reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", metrics::render(snapshot(rt)));
}

int on_status(mg_connection* c, void* cb) {
    if (const int r = admit(c, false)) return r;
    return reply_json(c, 200, status(*static_cast<Runtime*>(cb)));
}

int on_healthz(mg_connection* c, void* cb) {
    if (const int r = admit(c, false)) return r;
    auto& rt = *static_cast<Runtime*>(cb);
    if (rt.stopping) return reply(c, 503, "text/plain", "stopping\n");
    for (const auto& w : rt.workers)
        if (w->done()) return reply(c, 503, "text/plain", "a worker has stopped\n");
    return reply(c, 200, "text/plain", "ok\n");
}

// A query variable: `dflt` when absent (mg_get_var: -1; it empties the buffer), a marker no valid
// value matches when too long for the buffer (-2).
std::string query_var(const mg_request_info* ri, const char* name, const char* dflt) {
    const char* q = ri->query_string ? ri->query_string : "";
    char buf[16];
    const int r = mg_get_var(q, std::strlen(q), name, buf, sizeof(buf));
    if (r == -1) return dflt;
    if (r == -2) return "(too long)";
    return buf;
}

// The count `?n=` asks for, 1..max (default `dflt`); false with the error message when invalid.
bool query_count(const mg_request_info* ri, long dflt, long max, long& n, std::string& error) {
    const std::string v = query_var(ri, "n", std::to_string(dflt).c_str());
    char* end = nullptr;
    n = std::strtol(v.c_str(), &end, 10);
    if (end != v.c_str() && !*end && n >= 1 && n <= max) return true;
    error = "n: expected 1.." + std::to_string(max) + ", got \"" + v + "\"";
    return false;
}

int on_top(mg_connection* c, void* cb) {
    if (const int r = admit(c, false)) return r;
    auto& rt = *static_cast<Runtime*>(cb);
    const mg_request_info* ri = mg_get_request_info(c);
    const std::string sby = query_var(ri, "by", "bytes");
    if (sby != "bytes" && sby != "packets")
        return reply_json(c, 400, {{"error", "by: expected bytes or packets, got \"" + sby + "\""}});
    long n = 0;
    std::string error;
    if (!query_count(ri, 20, static_cast<long>(Worker::kTopMax), n, error))
        return reply_json(c, 400, {{"error", error}});
    try {
        return reply_json(c, 200, {{"by", sby}, {"flows", top_flows(rt, sby == "packets", static_cast<uint32_t>(n))}});
    } catch (const std::exception& e) {
        return reply_json(c, 503, {{"error", e.what()}});
    }
}

// Detection's events: those going on, then the latest ended (?n=, default 100, at most 1000).
int on_events(mg_connection* c, void* cb) {
    if (const int r = admit(c, false)) return r;
    auto& rt = *static_cast<Runtime*>(cb);
    if (!rt.detection) return reply_json(c, 200, {{"detect", false}, {"events", nlohmann::json::array()}});
    long n = 0;
    std::string error;
    if (!query_count(mg_get_request_info(c), 100, 1000, n, error)) return reply_json(c, 400, {{"error", error}});
    return reply_json(c, 200, {{"detect", true}, {"events", detection_events(*rt.detection, static_cast<size_t>(n))}});
}

// The flow matrix: cells heaviest by bytes first (?n=, default 1000, at most 1000000).
int on_matrix(mg_connection* c, void* cb) {
    if (const int r = admit(c, false)) return r;
    auto& rt = *static_cast<Runtime*>(cb);
    if (!rt.matrix)
        return reply_json(c, 404,
                          {{"error", "no flow matrix: define \"zones\" (or a \"policy\") in the configuration"}});
    long n = 0;
    std::string error;
    if (!query_count(mg_get_request_info(c), 1000, 1000000, n, error)) return reply_json(c, 400, {{"error", error}});
    return reply_json(c, 200, matrix_json(*rt.matrix, static_cast<size_t>(n)));
}

// The page for a person: graphs of /history, facts from /status.
int on_page(mg_connection* c, void*) {
    if (const int r = admit(c, false)) return r;
    return reply(c, 200, "text/html; charset=utf-8", metrics::page_html());
}

// The probe's own history for the page: ?s= seconds back (60..86400, default 3600), ?points= at
// most (10..5000, default 720).
int on_history(mg_connection* c, void* cb) {
    if (const int r = admit(c, false)) return r;
    auto& rt = *static_cast<Runtime*>(cb);
    const mg_request_info* ri = mg_get_request_info(c);
    auto number = [&](const char* name, long dflt, long lo, long hi, long& out) {
        const std::string v = query_var(ri, name, std::to_string(dflt).c_str());
        char* end = nullptr;
        out = std::strtol(v.c_str(), &end, 10);
        if (end != v.c_str() && !*end && out >= lo && out <= hi) return std::string();
        std::string e = name;
        e += ": expected ";
        e += std::to_string(lo) + ".." + std::to_string(hi) + ", got \"" + v + "\"";
        return e;
    };
    long seconds = 0, points = 0;
    std::string error = number("s", 3600, 60, 86400, seconds);
    if (error.empty()) error = number("points", 720, 10, 5000, points);
    if (!error.empty()) return reply_json(c, 400, {{"error", error}});
    return reply(c, 200, "application/json",
                 rt.history.json(static_cast<double>(seconds), static_cast<size_t>(points)).dump() + "\n");
}

int on_reload(mg_connection* c, void* cb) {
    if (const int r = admit(c, true)) return r;
    const nlohmann::json r = request_reload(*static_cast<Runtime*>(cb));
    return reply_json(c, r.value("ok", false) ? 200 : 400, r);
}

}  // namespace

bool Management::authorized(mg_connection* c) {
    if (relay_) {
        // Behind TLS the HTTP server listens on loopback for the relay alone.
        const mg_request_info* ri = mg_get_request_info(c);
        if (std::strcmp(ri->remote_addr, "127.0.0.1") != 0 ||
            !relay_->from_relay(static_cast<uint16_t>(ri->remote_port))) {
            reply(c, 403, "application/json", nlohmann::json{{"error", "use https://" + listen_}}.dump(2) + "\n");
            return false;
        }
    }
    if (!auth_) return true;
    if (auth_->allows(mg_get_header(c, "Authorization"))) return true;
    reply(c, 401, "application/json", nlohmann::json{{"error", "authentication required"}}.dump(2) + "\n");
    return false;
}

Management::Management(Runtime& rt, const std::string& listen, bool metrics_only, const web::WebConfig* web)
    : rt_(rt), web_(web) {
    if (web && !web->users.empty()) auth_ = std::make_unique<web::BasicAuth>(web->users);
    const bool tls = web && web->tls;
    listen_ = listen;
    const char* what = metrics_only ? "management.metrics_listen" : "management.listen";
    mg_init_library(0);
    // With TLS the HTTP server takes a loopback port of the kernel's choice, behind the relay.
    const std::string ports = tls ? "127.0.0.1:0" : listen;
    const char* options[] = {"listening_ports",    ports.c_str(), "num_threads", "4",
                             "request_timeout_ms", "10000",       nullptr};
    mg_callbacks callbacks{};
    ctx_ = mg_start(&callbacks, this, options);
    if (!ctx_) throw std::runtime_error(std::string(what) + ": cannot listen on " + ports + " (address in use?)");
    if (tls) {
        mg_server_port sp[2]{};
        if (mg_get_server_ports(ctx_, 2, sp) < 1) {
            mg_stop(ctx_);
            throw std::runtime_error(std::string(what) + ": the HTTP server has no port");
        }
        try {
            relay_ = std::make_unique<web::TlsRelay>(listen, static_cast<uint16_t>(sp[0].port), web->tls_config);
        } catch (const std::exception& e) {
            mg_stop(ctx_);
            ctx_ = nullptr;
            throw std::runtime_error(std::string(what) + ": " + e.what());
        }
    }
    mg_set_request_handler(ctx_, "/metrics$", on_metrics, &rt_);
    mg_set_request_handler(ctx_, "/healthz$", on_healthz, &rt_);
    if (metrics_only) return;
    mg_set_request_handler(ctx_, "/status$", on_status, &rt_);
    mg_set_request_handler(ctx_, "/flows/top$", on_top, &rt_);
    mg_set_request_handler(ctx_, "/events$", on_events, &rt_);
    mg_set_request_handler(ctx_, "/matrix$", on_matrix, &rt_);
    mg_set_request_handler(ctx_, "/reload$", on_reload, &rt_);
    mg_set_request_handler(ctx_, "/$", on_page, &rt_);
    mg_set_request_handler(ctx_, "/history$", on_history, &rt_);
}

Management::~Management() {
    relay_.reset();  // no new connections to the server first
    if (ctx_) mg_stop(ctx_);
}

}  // namespace weir
