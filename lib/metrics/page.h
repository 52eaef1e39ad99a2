// SPDX-License-Identifier: BSD-3-Clause
// The page for a person, served at / by the management server (graphs from /history).
#pragma once

#include <string>

namespace weir::metrics {

const std::string& page_html();

}  // namespace weir::metrics
