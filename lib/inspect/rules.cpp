// SPDX-License-Identifier: BSD-3-Clause
#include "inspect/rules.h"

#include <hs/hs.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "config/config.h"

namespace weir::inspect {

using nlohmann::json;

Registry& Registry::instance() {
    static Registry r;
    return r;
}

uint16_t Registry::app(const std::string& name) {
    std::lock_guard<std::mutex> g(mu_);
    for (size_t i = 0; i < apps_.size(); ++i)
        if (apps_[i] == name) return static_cast<uint16_t>(i + 1);
    if (apps_.size() >= 65535) throw std::length_error("more than 65535 application names since start");
    apps_.push_back(name);
    return static_cast<uint16_t>(apps_.size());
}

uint16_t Registry::rule(const RuleInfo& r) {
    std::lock_guard<std::mutex> g(mu_);
    for (size_t i = rules_.size(); i-- > 0;)
        if (rules_[i].id == r.id && rules_[i].name == r.name && rules_[i].tag == r.tag && rules_[i].app == r.app)
            return static_cast<uint16_t>(i + 1);
    if (rules_.size() >= 65535) throw std::length_error("more than 65535 distinct rules since start");
    rules_.push_back(r);
    return static_cast<uint16_t>(rules_.size());
}

std::string Registry::app_name(uint16_t h) const {
    std::lock_guard<std::mutex> g(mu_);
    return h && h <= apps_.size() ? apps_[h - 1] : std::string();
}

const RuleInfo* Registry::rule_info(uint16_t h) const {
    std::lock_guard<std::mutex> g(mu_);
    return h && h <= rules_.size() ? &rules_[h - 1] : nullptr;  // deque: stable references
}

size_t Registry::apps() const {
    std::lock_guard<std::mutex> g(mu_);
    return apps_.size();
}

Ruleset::~Ruleset() {
    if (db_) hs_free_database(db_);
}

std::shared_ptr<const Ruleset> Ruleset::compile(std::vector<RuleSpec> rules, uint32_t depth, std::string source) {
    if (rules.empty()) throw RuleError(source + ": no rules");
    if (hs_valid_platform() != HS_SUCCESS)
        throw RuleError("this CPU lacks SSSE3, which Hyperscan needs: payload inspection cannot run here");
    std::vector<const char*> exprs;
    std::vector<unsigned> flags, ids;
    std::vector<hs_expr_ext_t> ext(rules.size());
    std::vector<const hs_expr_ext_t*> extp;
    for (size_t i = 0; i < rules.size(); ++i) {
        const RuleSpec& r = rules[i];
        exprs.push_back(r.pattern.c_str());
        // A rule reports once per direction of a flow: all a tag or an application name needs.
        flags.push_back(r.flags | HS_FLAG_SINGLEMATCH);
        ids.push_back(static_cast<unsigned>(i));
        hs_expr_ext_t& e = ext[i];
        e = hs_expr_ext_t{};
        const uint64_t max = r.depth ? r.depth : depth;
        e.flags = HS_EXT_FLAG_MAX_OFFSET;
        e.max_offset = max;
        if (r.offset) {
            e.flags |= HS_EXT_FLAG_MIN_OFFSET;
            e.min_offset = r.offset;
        }
        extp.push_back(&e);
    }
    hs_database_t* db = nullptr;
    hs_compile_error_t* err = nullptr;
    const hs_error_t rc = hs_compile_ext_multi(exprs.data(), flags.data(), ids.data(), extp.data(),
                                               static_cast<unsigned>(rules.size()), HS_MODE_STREAM, nullptr, &db, &err);
    if (rc != HS_SUCCESS) {
        std::string why = err && err->message ? err->message : "compile failed";
        std::string who = source;
        if (err && err->expression >= 0 && static_cast<size_t>(err->expression) < rules.size())
            who += ": rule " + std::to_string(rules[static_cast<size_t>(err->expression)].id) + " (" +
                rules[static_cast<size_t>(err->expression)].name + ")";
        if (err) hs_free_compile_error(err);
        throw RuleError(who + ": " + why);
    }
    std::shared_ptr<Ruleset> set(new Ruleset());
    set->db_ = db;
    hs_stream_size(db, &set->stream_bytes_);
    hs_database_size(db, &set->db_bytes_);
    Registry& reg = Registry::instance();
    for (const RuleSpec& r : rules) {
        CompiledRule c{};
        c.handle = reg.rule(RuleInfo{r.id, r.name, r.tag, r.app});
        c.app = r.app.empty() ? 0 : reg.app(r.app);
        c.proto = r.proto;
        c.direction = r.direction;
        c.tag = !r.tag.empty() || r.capture;
        c.capture = r.capture;
        if (r.ports.size() <= 8) {
            c.nports = static_cast<uint8_t>(r.ports.size());
            for (size_t i = 0; i < r.ports.size(); ++i) c.ports[i] = r.ports[i];
        } else {
            auto bits = std::make_unique<uint64_t[]>(1024);
            for (uint16_t p : r.ports) bits[p >> 6] |= 1ull << (p & 63);
            c.port_bits = bits.get();
            set->port_sets_.push_back(std::move(bits));
        }
        set->rules_.push_back(c);
    }
    set->specs_ = std::move(rules);
    set->source_ = std::move(source);
    return set;
}

namespace {

const std::map<std::string, unsigned>& flag_names() {
    static const std::map<std::string, unsigned> m = {
        {"caseless", HS_FLAG_CASELESS},
        {"dotall", HS_FLAG_DOTALL},
        {"multiline", HS_FLAG_MULTILINE},
        {"utf8", HS_FLAG_UTF8},
        {"ucp", HS_FLAG_UCP},
        {"allowempty", HS_FLAG_ALLOWEMPTY},
        {"single-match", 0},  // always on: each rule reports once per direction of a flow
    };
    return m;
}

std::string kind(const json& v) { return config::describe_json(v); }

}  // namespace

std::vector<RuleSpec> parse_rules(const json& j, const std::string& where) {
    std::vector<std::string> problems;
    std::vector<RuleSpec> out;
    if (!j.is_object() || !j.contains("rules") || !j.at("rules").is_array())
        throw RuleError(where + ": expected an object with a \"rules\" array");
    for (auto it = j.begin(); it != j.end(); ++it)
        if (it.key() != "rules" && it.key() != "comment") problems.push_back(where + ": " + it.key() + ": unknown key");
    std::set<uint32_t> ids;
    const json& arr = j.at("rules");
    for (size_t i = 0; i < arr.size(); ++i) {
        const json& o = arr[i];
        std::string at = where + ": rules[" + std::to_string(i) + "]";
        auto problem = [&](const std::string& field, const std::string& what) {
            problems.push_back(at + (field.empty() ? "" : "." + field) + ": " + what);
        };
        if (!o.is_object()) {
            problem("", "expected an object, got " + kind(o));
            continue;
        }
        RuleSpec r;
        if (!o.contains("id") || !o.at("id").is_number_unsigned() || o.at("id").get<uint64_t>() > UINT32_MAX) {
            problem("id", "expected an integer 0..4294967295");
            continue;
        }
        r.id = o.at("id").get<uint32_t>();
        at += " (id " + std::to_string(r.id) + ")";
        if (!ids.insert(r.id).second) problem("id", "used by another rule");
        for (auto f = o.begin(); f != o.end(); ++f) {
            const std::string& k = f.key();
            const json& v = f.value();
            if (k == "id") continue;
            if (k == "name" || k == "pattern" || k == "tag" || k == "app") {
                if (!v.is_string()) {
                    problem(k, "expected a string, got " + kind(v));
                    continue;
                }
                std::string s = v.get<std::string>();
                if ((k == "tag" || k == "app") && (s.empty() || s.size() > 64)) problem(k, "expected 1..64 characters");
                (k == "name" ? r.name : k == "pattern" ? r.pattern : k == "tag" ? r.tag : r.app) = std::move(s);
            } else if (k == "flags") {
                if (!v.is_array()) {
                    problem(k, "expected an array of flag names, got " + kind(v));
                    continue;
                }
                for (const json& fl : v) {
                    const auto n = fl.is_string() ? flag_names().find(fl.get<std::string>()) : flag_names().end();
                    if (n == flag_names().end())
                        problem(k,
                                "unknown flag " + fl.dump() +
                                    " (caseless, dotall, multiline, utf8, ucp, allowempty, single-match)");
                    else
                        r.flags |= n->second;
                }
            } else if (k == "proto") {
                const std::string p = v.is_string() ? v.get<std::string>() : "";
                if (p == "tcp")
                    r.proto = 6;
                else if (p == "udp")
                    r.proto = 17;
                else if (p == "any")
                    r.proto = 0;
                else
                    problem(k, "expected \"tcp\", \"udp\" or \"any\", got " + kind(v));
            } else if (k == "ports") {
                if (!v.is_array() || v.empty()) {
                    problem(k, "expected a non-empty array of ports, got " + kind(v));
                    continue;
                }
                for (const json& p : v) {
                    if (!p.is_number_unsigned() || p.get<uint64_t>() > 65535)
                        problem(k, "expected ports 0..65535, got " + kind(p));
                    else
                        r.ports.push_back(p.get<uint16_t>());
                }
            } else if (k == "direction") {
                const std::string d = v.is_string() ? v.get<std::string>() : "";
                if (d == "to_server")
                    r.direction = 1;
                else if (d == "to_client")
                    r.direction = 2;
                else if (d == "both")
                    r.direction = 3;
                else
                    problem(k, "expected \"to_server\", \"to_client\" or \"both\", got " + kind(v));
            } else if (k == "offset" || k == "depth") {
                if (!v.is_number_unsigned() || v.get<uint64_t>() > (1u << 30)) {
                    problem(k, "expected an integer 0..1073741824, got " + kind(v));
                    continue;
                }
                (k == "offset" ? r.offset : r.depth) = v.get<uint64_t>();
            } else if (k == "capture") {
                if (!v.is_boolean())
                    problem(k, "expected true or false, got " + kind(v));
                else
                    r.capture = v.get<bool>();
            } else if (k == "comment") {
            } else {
                problem(k, "unknown key");
            }
        }
        if (r.pattern.empty()) problem("pattern", "missing or empty");
        if (r.name.empty()) r.name = "rule " + std::to_string(r.id);
        if (r.tag.empty() && r.app.empty() && !r.capture)
            problem("", "does nothing: give it a \"tag\", an \"app\" or \"capture\": true");
        if (r.depth && r.offset >= r.depth) problem("offset", "must be below depth");
        out.push_back(std::move(r));
    }
    if (!problems.empty()) {
        std::string s;
        for (const auto& p : problems) s += (s.empty() ? "" : "\n") + p;
        throw RuleError(s);
    }
    return out;
}

std::vector<RuleSpec> load_rules_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw RuleError(path + ": cannot open: " + std::strerror(errno));
    json j;
    try {
        j = json::parse(in);
    } catch (const json::parse_error& e) {
        throw RuleError(path + ": not valid JSON: " + e.what());
    }
    return parse_rules(j, path);
}

std::string engine_version() { return std::string("Hyperscan ") + hs_version(); }

}  // namespace weir::inspect
