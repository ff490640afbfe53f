#include "proxy/ingress/invocation_setup.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"

namespace eofaas::proxy {
namespace {

// Deadlines further away than this count as none (and never overflow the steady clock).
constexpr std::chrono::hours kNoDeadline(24 * 365 * 10);

}  // namespace

std::string NewRequestId() {
  thread_local std::mt19937_64 random(std::random_device{}());
  const uint64_t high = random();
  const uint64_t low = random();
  return absl::StrCat(absl::Hex(high, absl::kZeroPad16), absl::Hex(low, absl::kZeroPad16));
}

std::optional<SteadyTime> CallerDeadline(const grpc::CallbackServerContext& context) {
  const auto deadline = context.deadline();
  const auto now = std::chrono::system_clock::now();
  if (deadline == std::chrono::system_clock::time_point::max() || deadline - now > kNoDeadline) {
    return std::nullopt;
  }
  return std::chrono::steady_clock::now() +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(deadline - now);
}

SteadyTime InvocationDeadline(std::optional<SteadyTime> caller, absl::Duration timeout,
                              absl::Duration default_timeout, SteadyTime now) {
  if (timeout == absl::ZeroDuration()) {
    if (caller) return *caller;
    timeout = default_timeout;
  }
  const SteadyTime own =
      now + std::min(absl::ToChronoNanoseconds(timeout), std::chrono::nanoseconds(kNoDeadline));
  return caller ? std::min(*caller, own) : own;
}

}  // namespace eofaas::proxy
