// SPDX-License-Identifier: BSD-3-Clause
// Tells the log about a destination that fails: the first failure, a reminder every minute
// while it lasts (with how many deliveries failed), and each recovery. The counters in the
// metrics say how much was lost; this says when, in words an operator sees in the journal.
// Failures are warnings, a recovery a notice (weir's log, common/log.h). One thread at a time
// (an exporter's control thread, or ClickHouse's sender thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace weir::exporter {

class FailureLog {
public:
    using Clock = std::chrono::steady_clock;

    // `consequence`: what a failure costs, said with the first one.
    explicit FailureLog(std::string what, Clock::duration remind = std::chrono::seconds(60),
                        std::string consequence = "what it carries is counted lost until it recovers")
        : what_(std::move(what)), consequence_(std::move(consequence)), remind_(remind) {}

    // A delivery failed, for `why` (strerror, an HTTP status, ...).
    void failed(const std::string& why, Clock::time_point now = Clock::now());
    // A delivery went through.
    void ok(Clock::time_point now = Clock::now());

    bool failing() const { return failing_; }
    uint64_t episodes() const { return episodes_; }  // times it started failing

private:
    std::string what_, consequence_;
    Clock::duration remind_;
    bool failing_ = false;
    Clock::time_point since_{}, last_said_{};
    uint64_t failures_ = 0;  // in this episode
    uint64_t episodes_ = 0;
    std::string last_why_;
};

}  // namespace weir::exporter
