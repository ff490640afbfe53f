#include "proxy/ingress/ingress.h"

#include "common/clock.h"

namespace eofaas::proxy {

Ingress::Ingress(Dispatcher& dispatcher, DataRoots roots, Listers listers, IngressMetrics& metrics,
                 IngressOptions options)
    : roots_(std::move(roots)),
      listers_(listers),
      options_(options),
      checked_files_(common::SteadyClock::Get(), options_.cursor_check_ttl),
      services_{dispatcher, roots_,         checked_files_, listers_,
                planners_,  cursor_checks_, metrics,        options_},
      planners_("plan", options_.planner_threads, options_.max_queued_plans),
      cursor_checks_("cursor", options_.cursor_check_threads, options_.max_queued_cursor_checks) {}

}  // namespace eofaas::proxy
