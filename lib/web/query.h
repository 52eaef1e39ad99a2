// SPDX-License-Identifier: BSD-3-Clause
// The management API's query strings (/flows/top?by=packets&n=5): values found, decoded and
// checked here, apart from the HTTP server, so that the bytes of any request are parsed by code
// the fuzzer sees. A refused value is quoted back in the error in printable ASCII: the request's
// bytes may be anything, and the answer is JSON, which takes only valid UTF-8.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace weir::web {

// The value of the first `name=` pair of a query string (pairs split by '&'), with %XX decoded and
// '+' read as a space; a pair without '=' has an empty value. nullopt when `name` is absent.
// A '%' not followed by two hexadecimal digits stays as it is.
std::optional<std::string> query_value(std::string_view query, std::string_view name);

// `s` for a message: printable ASCII as it is, '"' and '\\' and any other byte as \xNN; past
// `max` bytes of `s`, "..." instead of the rest.
std::string printable(std::string_view s, size_t max = 32);

// ?name= as a decimal integer in lo..hi (digits only), `dflt` when absent. False, with `error`
// naming the variable, the range and the value given, when it is not.
bool query_integer(std::string_view query, std::string_view name, long dflt, long lo, long hi, long& out,
                   std::string& error);

// ?name= as one of `choices`, `dflt` when absent; false with `error` when it is none of them.
bool query_choice(std::string_view query, std::string_view name, std::string_view dflt,
                  const std::vector<std::string_view>& choices, std::string& out, std::string& error);

}  // namespace weir::web
