// SPDX-License-Identifier: BSD-3-Clause
// Reload on the control thread (see reload.cpp).
#pragma once

#include <nlohmann/json.hpp>

#include "control.h"

namespace weir {

// Reads the configuration again and applies what can change live (exporters, timeouts,
// template refresh, stats interval, log level), or refuses the whole reload, changing nothing.
// Control thread only. Returns {"ok", "changed", "pinned", "errors"}.
nlohmann::json apply_reload(Runtime& rt);

}  // namespace weir
