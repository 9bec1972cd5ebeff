// Client commands of the joingate binary that talk to a running sidecar's admin API.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace joingate::cli {

// Blocks until /readyz is 200 (exit 0), printing one line each time the reason changes;
// exit 1 on timeout or when the sidecar gave up (admission.retry.deadline).
int wait(const std::string& admin_url, std::optional<std::chrono::milliseconds> timeout);

// The cluster view as a table (exit 0), or why it cannot be read (exit 1).
int status(const std::string& admin_url);

} // namespace joingate::cli
