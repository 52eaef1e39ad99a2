// SPDX-License-Identifier: BSD-3-Clause
// The names IPFIX exporters write for payload inspection's handles (applications, rules), read
// from the rules' registry.
#pragma once

#include <string>

#include "inspect/rules.h"
#include "ipfix/ipfix.h"

namespace weir::inspect {

class RegistryNames : public ipfix::InspectNames {
public:
    std::string app(uint16_t h) const override { return Registry::instance().app_name(h); }
    bool rule(uint16_t h, uint32_t& id, std::string& tag) const override {
        const RuleInfo* r = Registry::instance().rule_info(h);
        if (!r) return false;
        id = r->id;
        tag = r->tag;
        return true;
    }
};

}  // namespace weir::inspect
