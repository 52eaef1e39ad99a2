// SPDX-License-Identifier: BSD-3-Clause
// Management query fuzz target: the bytes are the query string of a request (what follows '?'),
// checked as every endpoint checks its variables (/flows/top by and n, /events and /matrix n,
// /history s and points). An accepted number must be digits in range; a refusal must name the
// variable and be printable ASCII, so that it goes out as JSON. The first byte also splits the
// rest into a name and a value that, percent-encoded after the query, must decode back exactly.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "web/query.h"

namespace {

void check_error(const std::string& e, std::string_view name) {
    if (e.compare(0, name.size() + 2, std::string(name) + ": ") != 0) std::abort();
    for (const char c : e)
        if (c < 0x20 || c > 0x7e) std::abort();
    (void)nlohmann::json{{"error", e}}.dump();  // throws on text JSON cannot carry
}

void integer(std::string_view q, std::string_view name, long dflt, long lo, long hi) {
    long n = -1;
    std::string e;
    if (weir::web::query_integer(q, name, dflt, lo, hi, n, e)) {
        const auto v = weir::web::query_value(q, name);
        if (!v && n != dflt) std::abort();
        if (n < lo || n > hi) std::abort();
        if (v &&
            (v->empty() || v->find_first_not_of("0123456789") != std::string::npos ||
             std::strtol(v->c_str(), nullptr, 10) != n))
            std::abort();
    } else {
        check_error(e, name);
    }
}

std::string encoded(std::string_view s) {
    static const char* const kDigits = "0123456789ABCDEF";
    std::string out;
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            out.push_back(ch);
        } else if (c == ' ') {
            out.push_back('+');
        } else {
            out.push_back('%');
            out.push_back(kDigits[c >> 4]);
            out.push_back(kDigits[c & 15]);
        }
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view q(reinterpret_cast<const char*>(data), size);
    integer(q, "n", 20, 1, 1000);
    integer(q, "n", 1000, 1, 1000000);
    integer(q, "s", 3600, 60, 86400);
    integer(q, "points", 720, 10, 5000);
    std::string by, e;
    if (weir::web::query_choice(q, "by", "bytes", {"bytes", "packets"}, by, e)) {
        if (by != "bytes" && by != "packets") std::abort();
    } else {
        check_error(e, "by");
    }
    if (weir::web::printable(q, 16).size() > 16 * 4 + 3) std::abort();

    // Round trip: a name and a value of any bytes, encoded and put after the query, decode back
    // unless the query already holds that name.
    if (size < 2) return 0;
    const size_t cut = 1 + data[0] % (size - 1);
    const std::string name(q.substr(1, cut - 1)), value(q.substr(cut));
    if (name.empty()) return 0;
    const std::string prefix(q.substr(0, size / 3));
    const std::string whole = prefix + "&" + encoded(name) + "=" + encoded(value);
    const auto before = weir::web::query_value(prefix, name);
    const auto got = weir::web::query_value(whole, name);
    if (!got || (before ? *got != *before : *got != value)) std::abort();
    return 0;
}
