#include "proxy/ingress/invocation_setup.h"

#include <algorithm>
#include <random>

namespace eofaas::proxy {
namespace {

// Deadlines further away than this count as none (and never overflow the steady clock).
constexpr std::chrono::hours kNoDeadline(24 * 365 * 10);

}  // namespace

RequestId RequestId::New() {
  static constexpr char kHex[] = "0123456789abcdef";
  thread_local std::mt19937_64 random(std::random_device{}());
  RequestId id;
  for (size_t half = 0; half < 2; ++half) {
    uint64_t bits = random();
    for (size_t i = 0; i < 16; ++i, bits >>= 4) id.digits_[half * 16 + 15 - i] = kHex[bits & 0xf];
  }
  return id;
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
