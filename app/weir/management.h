// SPDX-License-Identifier: BSD-3-Clause
// The management HTTP server (civetweb, its own threads, bound to the management address):
// /metrics (Prometheus), /status, /flows/top, /healthz, and POST /reload. Never on a worker.
#pragma once

#include <memory>
#include <string>

#include "control.h"
#include "web/tls_relay.h"
#include "web/web_config.h"

struct mg_context;
struct mg_connection;

namespace weir {

class Management {
public:
    // metrics_only: serve /metrics and /healthz, nothing that tells who talks to whom or changes
    // anything (for a scraping address that leaves the host). web: TLS and basic auth (nullptr:
    // plain HTTP, no authentication). Throws std::runtime_error.
    Management(Runtime& rt, const std::string& listen, bool metrics_only = false, const web::WebConfig* web = nullptr);
    ~Management();
    Management(const Management&) = delete;
    Management& operator=(const Management&) = delete;

    // Whether the request may go on (basic auth); answers it with 401 when not.
    bool authorized(mg_connection* c);

private:
    Runtime& rt_;
    const web::WebConfig* web_;
    std::unique_ptr<web::BasicAuth> auth_;
    mg_context* ctx_ = nullptr;
    std::unique_ptr<web::TlsRelay> relay_;  // TLS: the public address; the HTTP server then on loopback only
    std::string listen_;
};

}  // namespace weir
