// SPDX-License-Identifier: BSD-3-Clause
#include "management.h"

#include <civetweb.h>

#include <cstring>
#include <stdexcept>

#include <string>

#include "common/log.h"
#include "metrics/page.h"
#include "web/query.h"

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

// Text that is not valid UTF-8 (a capture's bytes in a flow's name, say) goes out with U+FFFD in
// its place, never as an exception on the server's thread.
int reply_json(mg_connection* c, int code, const nlohmann::json& j) {
    return reply(c, code, "application/json", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

// A handler's exception becomes a 500 with its message: it must not unwind into the HTTP server.
template <int (*F)(mg_connection*, void*)>
int guarded(mg_connection* c, void* cb) {
    try {
        return F(c, cb);
    } catch (const std::exception& e) {
        log::say(log::Level::kWarning, "weir: management: %s: %s\n", mg_get_request_info(c)->local_uri, e.what());
        try {
            return reply(c, 500, "application/json", "{\"error\": \"internal error (see the log)\"}\n");
        } catch (...) {
            return 500;
        }
    }
}

// The request's query string ("" when it has none).
std::string_view query(const mg_connection* c) {
    const char* q = mg_get_request_info(c)->query_string;
    return q ? q : "";
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

int on_top(mg_connection* c, void* cb) {
    if (const int r = admit(c, false)) return r;
    auto& rt = *static_cast<Runtime*>(cb);
    std::string sby, error;
    long n = 0;
    if (!web::query_choice(query(c), "by", "bytes", {"bytes", "packets"}, sby, error) ||
        !web::query_integer(query(c), "n", 20, 1, static_cast<long>(Worker::kTopMax), n, error))
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
    if (!web::query_integer(query(c), "n", 100, 1, 1000, n, error)) return reply_json(c, 400, {{"error", error}});
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
    if (!web::query_integer(query(c), "n", 1000, 1, 1000000, n, error)) return reply_json(c, 400, {{"error", error}});
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
    long seconds = 0, points = 0;
    std::string error;
    if (!web::query_integer(query(c), "s", 3600, 60, 86400, seconds, error) ||
        !web::query_integer(query(c), "points", 720, 10, 5000, points, error))
        return reply_json(c, 400, {{"error", error}});
    return reply(c, 200, "application/json",
                 rt.history.json(static_cast<double>(seconds), static_cast<size_t>(points))
                         .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
                     "\n");
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
    mg_set_request_handler(ctx_, "/metrics$", guarded<on_metrics>, &rt_);
    mg_set_request_handler(ctx_, "/healthz$", guarded<on_healthz>, &rt_);
    if (metrics_only) return;
    mg_set_request_handler(ctx_, "/status$", guarded<on_status>, &rt_);
    mg_set_request_handler(ctx_, "/flows/top$", guarded<on_top>, &rt_);
    mg_set_request_handler(ctx_, "/events$", guarded<on_events>, &rt_);
    mg_set_request_handler(ctx_, "/matrix$", guarded<on_matrix>, &rt_);
    mg_set_request_handler(ctx_, "/reload$", guarded<on_reload>, &rt_);
    mg_set_request_handler(ctx_, "/$", guarded<on_page>, &rt_);
    mg_set_request_handler(ctx_, "/history$", guarded<on_history>, &rt_);
}

Management::~Management() {
    relay_.reset();  // no new connections to the server first
    if (ctx_) mg_stop(ctx_);
}

}  // namespace weir
