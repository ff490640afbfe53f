#include "proxy/dispatch/call_group.h"

namespace eofaas::proxy {

void CallGroup::Cancel() {
  std::lock_guard lock(mu_);
  cancelled_ = true;
  for (Cancellable* call : calls_) call->Cancel();
  calls_.clear();
}

bool CallGroup::Add(Cancellable* call) {
  std::lock_guard lock(mu_);
  if (cancelled_) return false;
  calls_.insert(call);
  return true;
}

void CallGroup::Remove(Cancellable* call) {
  std::lock_guard lock(mu_);
  calls_.erase(call);
}

}  // namespace eofaas::proxy
