#include "proxy/ingress/http_translation.h"

#include <google/protobuf/util/json_util.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "proxy/dispatch/envelope.h"

namespace eofaas::proxy {
namespace {

constexpr std::string_view kRoutePrefix = "/v1/functions/";
constexpr std::string_view kRouteSuffix = ":invoke";

std::string ErrorJson(std::string_view first_key, std::string_view first,
                      std::string_view message) {
  std::string json = "{\"error\":{\"";
  json.append(first_key).append("\":");
  AppendJsonString(first, json);
  json.append(",\"message\":");
  AppendJsonString(message, json);
  json.append("}}");
  return json;
}

const char* CodeName(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case absl::StatusCode::kPermissionDenied:
      return "PERMISSION_DENIED";
    case absl::StatusCode::kNotFound:
      return "NOT_FOUND";
    case absl::StatusCode::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case absl::StatusCode::kCancelled:
      return "CANCELLED";
    case absl::StatusCode::kUnavailable:
      return "UNAVAILABLE";
    case absl::StatusCode::kDeadlineExceeded:
      return "DEADLINE_EXCEEDED";
    default:
      return "INTERNAL";
  }
}

}  // namespace

std::optional<std::string_view> InvokeRoute(std::string_view target) {
  if (!target.starts_with(kRoutePrefix) || !target.ends_with(kRouteSuffix) ||
      target.size() == kRoutePrefix.size() + kRouteSuffix.size()) {
    return std::nullopt;
  }
  target.remove_prefix(kRoutePrefix.size());
  target.remove_suffix(kRouteSuffix.size());
  if (target.find('/') != std::string_view::npos) return std::nullopt;
  return target;
}

std::optional<HttpAnswer> RejectRequestLine(std::string_view method, std::string_view target,
                                            std::string_view content_type) {
  if (!InvokeRoute(target)) {
    return ErrorAnswer(
        absl::NotFoundError("no route " + std::string(target) +
                            ": the ingress serves POST /v1/functions/{name}:invoke"));
  }
  if (method != "POST") {
    HttpAnswer answer = ErrorAnswer(absl::InvalidArgumentError("method " + std::string(method) +
                                                               " not allowed: invoke with POST"));
    answer.status = 405;
    answer.headers.emplace_back("Allow", "POST");
    return answer;
  }
  if (!content_type.empty() &&
      !absl::StartsWithIgnoreCase(absl::string_view(content_type.data(), content_type.size()),
                                  "application/json")) {
    HttpAnswer answer = ErrorAnswer(absl::InvalidArgumentError(
        "Content-Type " + std::string(content_type) + ": the body must be application/json"));
    answer.status = 415;
    return answer;
  }
  return std::nullopt;
}

absl::StatusOr<eofaas::v1::InvokeRequest> ParseInvokeBody(std::string_view function,
                                                          std::string_view body) {
  eofaas::v1::InvokeRequest request;
  auto parsed = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(body.data(), body.size()), &request);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "body: not a JSON object of cursor, args and timeout: ", std::string(parsed.message())));
  }
  if (!request.function().empty()) {
    return absl::InvalidArgumentError("body: function is named by the path, not the body");
  }
  request.set_function(std::string(function));
  return request;
}

int HttpStatusOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

HttpAnswer ErrorAnswer(const absl::Status& status) {
  return HttpAnswer{
      .status = HttpStatusOf(status.code()),
      .content_type = "application/json",
      .body = ErrorJson("code", CodeName(status.code()),
                        std::string_view(status.message().data(), status.message().size()))};
}

HttpAnswer InvokeAnswer(const absl::Status& status, eofaas::v1::InvokeResponse& response) {
  if (!status.ok()) return ErrorAnswer(status);
  HttpAnswer answer;
  answer.headers = {{"X-Eofaas-Replica", response.replica()},
                    {"X-Eofaas-Attempts", absl::StrCat(response.attempts())}};
  if (response.has_error()) {
    const eofaas::v1::FunctionError& error = response.error();
    answer.content_type = "application/json";
    answer.headers.emplace_back("X-Eofaas-Function-Error",
                                error.handled() ? "handled" : "unhandled");
    answer.body = ErrorJson("type", error.type(), error.message());
  } else {
    answer.content_type = "application/octet-stream";
    answer.body = std::move(*response.mutable_result());
  }
  return answer;
}

}  // namespace eofaas::proxy
