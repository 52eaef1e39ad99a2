// SPDX-License-Identifier: BSD-3-Clause
// The management HTTP server (civetweb, its own threads, bound to the management address):
// /metrics (Prometheus), /status, /flows/top, /healthz, and POST /reload. Never on a worker.
#pragma once

#include <string>

#include "control.h"

struct mg_context;

namespace weir {

class Management {
public:
    // metrics_only: serve /metrics and /healthz, nothing that tells who talks to whom or changes
    // anything (for a scraping address that leaves the host).
    Management(Runtime& rt, const std::string& listen, bool metrics_only = false);  // throws std::runtime_error
    ~Management();
    Management(const Management&) = delete;
    Management& operator=(const Management&) = delete;

private:
    Runtime& rt_;
    mg_context* ctx_ = nullptr;
};

}  // namespace weir
