// SPDX-License-Identifier: BSD-3-Clause
// Built instead of kafka_exporter.cpp when librdkafka was not found: kafka:// exporters are
// refused at start with the reason (make_exporter asks kafka_available() first).
#include <stdexcept>

#include "export/exporter.h"

namespace weir::exporter {

bool kafka_available() { return false; }

std::vector<std::string> kafka_problems(const config::Exporter& ex) {
    if (ex.scheme != config::Scheme::kKafka) return {};
    return {"url: this weir was built without Kafka (librdkafka-dev missing at build time)"};
}

std::unique_ptr<Exporter> make_kafka_exporter(const config::Exporter& ex, const config::Config&,
                                              std::shared_ptr<const ExportContext>) {
    throw std::runtime_error(ex.url + ": this weir was built without Kafka");
}

}  // namespace weir::exporter
