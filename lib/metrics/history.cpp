// SPDX-License-Identifier: BSD-3-Clause
#include "metrics/history.h"

#include <algorithm>

namespace weir::metrics {

void History::add(const Sample& s) {
    std::lock_guard<std::mutex> lock(mu_);
    if (ring_.size() < cap_) {
        ring_.push_back(s);
        return;
    }
    ring_[next_] = s;
    next_ = (next_ + 1) % cap_;
}

nlohmann::json History::json(double seconds, size_t points) const {
    std::vector<Sample> v;
    {
        std::lock_guard<std::mutex> lock(mu_);
        v.reserve(ring_.size());
        for (size_t i = 0; i < ring_.size(); ++i) v.push_back(ring_[(next_ + i) % ring_.size()]);
    }
    if (seconds > 0 && !v.empty()) {
        const double from = v.back().t - seconds;
        // The first sample in the window is the base of the first rate.
        auto it = std::lower_bound(v.begin(), v.end(), from, [](const Sample& s, double t) { return s.t < t; });
        v.erase(v.begin(), it);
    }
    // Fewer points than samples: keep every k-th (rates over the longer interval; levels at the
    // kept sample, busy as the highest in between, as MRTG's peaks).
    const size_t k = points && v.size() > points + 1 ? (v.size() + points - 1) / points : 1;
    nlohmann::json t = nlohmann::json::array(), pps = nlohmann::json::array(), bps = nlohmann::json::array(),
                   missed = nlohmann::json::array(), decode = nlohmann::json::array(), newf = nlohmann::json::array(),
                   recs = nlohmann::json::array(), lost = nlohmann::json::array(), events = nlohmann::json::array(),
                   active = nlohmann::json::array(), busy = nlohmann::json::array();
    auto rate = [](uint64_t a, uint64_t b, double dt) {
        return b >= a && dt > 0 ? static_cast<double>(b - a) / dt : 0.0;
    };
    for (size_t i = k; i < v.size(); i += k) {
        const Sample& a = v[i - k];
        const Sample& b = v[i];
        const double dt = b.t - a.t;
        double peak = 0;
        for (size_t j = i - k + 1; j <= i; ++j) peak = std::max(peak, v[j].busy);
        t.push_back(b.t);
        pps.push_back(rate(a.rx_packets, b.rx_packets, dt));
        bps.push_back(8 * rate(a.rx_bytes, b.rx_bytes, dt));
        missed.push_back(rate(a.missed, b.missed, dt));
        decode.push_back(rate(a.decode_drops, b.decode_drops, dt));
        newf.push_back(rate(a.flows_created, b.flows_created, dt));
        recs.push_back(rate(a.records, b.records, dt));
        lost.push_back(rate(a.export_dropped, b.export_dropped, dt));
        events.push_back(60 * rate(a.events, b.events, dt));
        active.push_back(b.flows_active);
        busy.push_back(peak);
    }
    return {{"step_s", step_ * static_cast<double>(k)},
            {"t", t},
            {"pps", pps},
            {"bps", bps},
            {"missed_pps", missed},
            {"decode_drops_pps", decode},
            {"new_flows_per_s", newf},
            {"records_per_s", recs},
            {"export_dropped_per_s", lost},
            {"events_per_min", events},
            {"flows_active", active},
            {"busy", busy}};
}

}  // namespace weir::metrics
