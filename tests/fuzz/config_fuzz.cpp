// SPDX-License-Identifier: BSD-3-Clause
// Configuration loader fuzz target: arbitrary bytes as a configuration file. What parses as JSON
// goes through config::from_json, which must either accept it or throw ConfigError with every
// problem named by its path; any other exception, or a crash, is a finding. An accepted
// configuration is checked for what the rest of weir relies on.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, false);
    if (j.is_discarded()) return 0;
    try {
        const weir::config::Config c = weir::config::from_json(j);
        if (c.ports.empty() || c.workers == 0) std::abort();  // "ports" is required; workers >= 1
        for (const auto& e : c.exporters)
            if (e.url.empty()) std::abort();
        // A wanted direction implies every port says one.
        if (c.want(&weir::config::Exporter::direction))
            for (const auto& p : c.ports)
                if (p.direction < 0) std::abort();
    } catch (const weir::config::ConfigError& e) {
        if (e.problems().empty()) std::abort();
        for (const std::string& p : e.problems())
            if (p.empty()) std::abort();
    }
    return 0;
}
