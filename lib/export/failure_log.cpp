// SPDX-License-Identifier: BSD-3-Clause
#include "export/failure_log.h"

#include "common/log.h"

namespace weir::exporter {
namespace {

double seconds(FailureLog::Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

void FailureLog::failed(const std::string& why, Clock::time_point now) {
    ++failures_;
    if (!failing_) {
        failing_ = true;
        ++episodes_;
        since_ = last_said_ = now;
        last_why_ = why;
        log::say(log::Level::kWarning, "weir: %s: delivery failed: %s (%s)\n", what_.c_str(), why.c_str(),
                 consequence_.c_str());
        return;
    }
    last_why_ = why;
    if (now - last_said_ >= remind_) {
        last_said_ = now;
        log::say(log::Level::kWarning, "weir: %s: still failing after %.0f s: %llu deliveries failed (last: %s)\n",
                 what_.c_str(), seconds(now - since_), static_cast<unsigned long long>(failures_), why.c_str());
    }
}

void FailureLog::ok(Clock::time_point now) {
    if (!failing_) return;
    log::say(log::Level::kNotice, "weir: %s: recovered after %.1f s; %llu deliveries failed meanwhile (last: %s)\n",
             what_.c_str(), seconds(now - since_), static_cast<unsigned long long>(failures_), last_why_.c_str());
    failing_ = false;
    failures_ = 0;
}

}  // namespace weir::exporter
