// SPDX-License-Identifier: BSD-3-Clause
#include "web/query.h"

#include <charconv>

namespace weir::web {

namespace {

int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') {
            out.push_back(' ');
        } else if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
            i += 2;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

}  // namespace

std::optional<std::string> query_value(std::string_view query, std::string_view name) {
    size_t start = 0;
    while (start <= query.size()) {
        size_t end = query.find('&', start);
        if (end == std::string_view::npos) end = query.size();
        const std::string_view pair = query.substr(start, end - start);
        const size_t eq = pair.find('=');
        const std::string_view key = pair.substr(0, eq);
        if (decode(key) == name) return eq == std::string_view::npos ? std::string() : decode(pair.substr(eq + 1));
        start = end + 1;
    }
    return std::nullopt;
}

std::string printable(std::string_view s, size_t max) {
    static const char* const kDigits = "0123456789abcdef";
    std::string out;
    for (size_t i = 0; i < s.size() && i < max; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            out.push_back(static_cast<char>(c));
        } else {
            out += "\\x";
            out.push_back(kDigits[c >> 4]);
            out.push_back(kDigits[c & 15]);
        }
    }
    if (s.size() > max) out += "...";
    return out;
}

bool query_integer(std::string_view query, std::string_view name, long dflt, long lo, long hi, long& out,
                   std::string& error) {
    const std::optional<std::string> v = query_value(query, name);
    if (!v) {
        out = dflt;
        return true;
    }
    const char* b = v->data();
    const char* e = b + v->size();
    long n = 0;
    const auto r = std::from_chars(b, e, n);
    if (!v->empty() && (*v)[0] != '-' && r.ec == std::errc() && r.ptr == e && n >= lo && n <= hi) {
        out = n;
        return true;
    }
    error = std::string(name);
    error += ": expected ";
    error += std::to_string(lo);
    error += "..";
    error += std::to_string(hi);
    error += ", got \"";
    error += printable(*v);
    error += "\"";
    return false;
}

bool query_choice(std::string_view query, std::string_view name, std::string_view dflt,
                  const std::vector<std::string_view>& choices, std::string& out, std::string& error) {
    const std::optional<std::string> v = query_value(query, name);
    if (!v) {
        out = std::string(dflt);
        return true;
    }
    for (const std::string_view c : choices)
        if (*v == c) {
            out = *v;
            return true;
        }
    error = std::string(name);
    error += ": expected ";
    for (size_t i = 0; i < choices.size(); ++i) {
        if (i) error += i + 1 == choices.size() ? " or " : ", ";
        error += choices[i];
    }
    error += ", got \"";
    error += printable(*v);
    error += "\"";
    return false;
}

}  // namespace weir::web
