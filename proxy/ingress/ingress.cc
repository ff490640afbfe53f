#include "proxy/ingress/ingress.h"

namespace eofaas::proxy {

Ingress::Ingress(Dispatcher& dispatcher, DataRoots roots, Listers listers, IngressMetrics& metrics,
                 IngressOptions options)
    : roots_(std::move(roots)),
      listers_(listers),
      options_(options),
      services_{dispatcher, roots_, listers_, planners_, cursor_checks_, metrics, options_},
      planners_("plan", options_.planner_threads, options_.max_queued_plans),
      cursor_checks_("cursor", options_.cursor_check_threads, options_.max_queued_cursor_checks) {}

}  // namespace eofaas::proxy
