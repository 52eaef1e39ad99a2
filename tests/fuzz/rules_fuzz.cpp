// SPDX-License-Identifier: BSD-3-Clause
// Payload rules loader fuzz target: arbitrary bytes as a rules file. What parses as JSON goes
// through inspect::parse_rules, which must accept it or throw RuleError naming the file; what it
// accepts (up to 16 rules, a bounded depth) is compiled by Hyperscan, which must compile it or
// throw RuleError naming the rule. Any other exception, or a crash, is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "inspect/rules.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, false);
    if (j.is_discarded()) return 0;
    std::vector<weir::inspect::RuleSpec> rules;
    try {
        rules = weir::inspect::parse_rules(j, "fuzz.json");
    } catch (const weir::inspect::RuleError& e) {
        if (std::string(e.what()).find("fuzz.json") == std::string::npos) std::abort();
        return 0;
    }
    if (rules.empty() || rules.size() > 16) return 0;  // compiling hundreds of regexes is slow, not interesting
    try {
        const auto set = weir::inspect::Ruleset::compile(rules, 512, "fuzz.json");
        if (!set || set->rules().size() != rules.size()) std::abort();
    } catch (const weir::inspect::RuleError& e) {
        if (std::string(e.what()).empty()) std::abort();
    }
    return 0;
}
