#include "control/k8s/client/kube_client.h"

#include <boost/beast/http/status.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <initializer_list>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "control/k8s/render.h"

namespace eofaas::control::k8s {
namespace {

namespace http = boost::beast::http;
namespace json = boost::json;

// A watch event is one line; none of the objects eofaas watches comes near this.
constexpr size_t kMaxEventBytes = 16 << 20;

// The kinds eofaas manages or reads, and their resource names in API paths.
struct Resource {
  absl::string_view kind;
  absl::string_view plural;
};
constexpr Resource kResources[] = {
    {"ConfigMap", "configmaps"},
    {"Secret", "secrets"},
    {"Service", "services"},
    {"Pod", "pods"},
    {"Deployment", "deployments"},
    {"ReplicaSet", "replicasets"},
    {"Job", "jobs"},
    {"HorizontalPodAutoscaler", "horizontalpodautoscalers"},
    {"EndpointSlice", "endpointslices"},
};

// RFC 1123 label (namespaces) or, with dots, subdomain (object names): these are all a path
// segment may hold, so nothing else reaches a URL.
bool IsDnsName(absl::string_view name, bool dots, size_t max_length) {
  if (name.empty() || name.size() > max_length) return false;
  if (!absl::ascii_isalnum(name.front()) || !absl::ascii_isalnum(name.back())) return false;
  for (char c : name) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-' || (dots && c == '.'))) {
      return false;
    }
  }
  return true;
}

std::string QueryEscape(absl::string_view value) {
  std::string escaped;
  for (char c : value) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      escaped += c;
    } else {
      absl::StrAppendFormat(&escaped, "%%%02X", static_cast<unsigned char>(c));
    }
  }
  return escaped;
}

// "?name=value&..." of the parameters whose value is not empty.
std::string Query(std::initializer_list<std::pair<absl::string_view, std::string>> parameters) {
  std::string query;
  for (const auto& [name, value] : parameters) {
    if (value.empty()) continue;
    absl::StrAppend(&query, query.empty() ? "?" : "&", name, "=", QueryEscape(value));
  }
  return query;
}

// "GET /api/v1/...": the request, without its query, for messages.
std::string Describe(const HttpRequest& request) {
  return absl::StrCat(std::string(http::to_string(request.method)), " ",
                      request.target.substr(0, request.target.find('?')));
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && absl::ascii_isspace(text.front())) text.remove_prefix(1);
  while (!text.empty() && absl::ascii_isspace(text.back())) text.remove_suffix(1);
  return text;
}

std::string StringField(const json::object& object, std::string_view key) {
  const json::value* value = object.if_contains(key);
  return value != nullptr && value->is_string() ? std::string(value->get_string()) : "";
}

const json::object& ObjectField(const json::object& object, std::string_view key) {
  static const json::object kEmpty;
  const json::value* value = object.if_contains(key);
  return value != nullptr && value->is_object() ? value->get_object() : kEmpty;
}

absl::StatusCode CodeFor(int http_status, absl::string_view reason) {
  switch (http_status) {
    case 400:
    case 415:
    case 422:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 409:
      return reason == "AlreadyExists" ? absl::StatusCode::kAlreadyExists
                                       : absl::StatusCode::kAborted;
    case 410:
      return absl::StatusCode::kOutOfRange;
    case 429:
      return absl::StatusCode::kUnavailable;
  }
  return http_status >= 500 && http_status < 600 ? absl::StatusCode::kUnavailable
                                                 : absl::StatusCode::kUnknown;
}

// The error of a failed request: its HTTP status, and the reason and message of the Status
// object the API server answers with (or the start of whatever it answered).
absl::Status ApiError(absl::string_view what, int http_status, std::string_view body) {
  boost::system::error_code parse_error;
  const json::value parsed = json::parse(body, parse_error);
  std::string reason;
  std::string message;
  if (!parse_error && parsed.is_object()) {
    reason = StringField(parsed.get_object(), "reason");
    message = StringField(parsed.get_object(), "message");
  }
  if (reason.empty()) {
    reason = std::string(http::obsolete_reason(static_cast<http::status>(http_status)));
  }
  if (message.empty()) message = std::string(Trim(body.substr(0, 200)));
  return absl::Status(CodeFor(http_status, reason),
                      absl::StrCat(what, ": ", http_status, " ", reason, ": ", message));
}

absl::StatusOr<json::object> ParseObject(absl::string_view what, std::string_view text) {
  boost::system::error_code error;
  json::value value = json::parse(text, error);
  if (error || !value.is_object()) {
    return absl::UnknownError(absl::StrCat(what, ": the API server's answer is not a JSON object"));
  }
  return std::move(value.get_object());
}

// Passes one line of a watch to `on_event`; an ERROR event becomes the error it carries.
absl::Status Dispatch(absl::string_view what, std::string_view line,
                      const KubeClient::WatchCallback& on_event) {
  absl::StatusOr<json::object> event = ParseObject(what, line);
  if (!event.ok()) return event.status();
  const std::string type = StringField(*event, "type");
  json::object object = ObjectField(*event, "object");
  if (type == "ERROR") {
    const json::value* code = object.if_contains("code");
    const int http_status = code != nullptr && code->is_int64() ? code->get_int64() : 500;
    return ApiError(what, http_status, json::serialize(object));
  }
  WatchEvent watch_event;
  if (type == "ADDED") {
    watch_event.type = WatchEventType::kAdded;
  } else if (type == "MODIFIED") {
    watch_event.type = WatchEventType::kModified;
  } else if (type == "DELETED") {
    watch_event.type = WatchEventType::kDeleted;
  } else if (type == "BOOKMARK") {
    watch_event.type = WatchEventType::kBookmark;
  } else {
    return absl::UnknownError(absl::StrCat(what, ": unknown watch event type \"", type, "\""));
  }
  watch_event.object = std::move(object);
  on_event(watch_event);
  return absl::OkStatus();
}

// node[key] when it is a scalar, else "". (A key that is not there reads as an invalid node,
// which only IsDefined may be asked.)
std::string Scalar(const YAML::Node& node, const char* key) {
  if (!node.IsDefined() || !node.IsMap()) return "";
  const YAML::Node value = node[key];
  return value.IsDefined() && value.IsScalar() ? value.Scalar() : "";
}

}  // namespace

absl::StatusOr<std::string> CollectionPath(absl::string_view api_version, absl::string_view kind,
                                           absl::string_view namespace_name) {
  const Resource* resource = nullptr;
  for (const Resource& candidate : kResources) {
    if (candidate.kind == kind) resource = &candidate;
  }
  if (resource == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("kind: \"", kind, "\" is not supported"));
  }
  if (api_version.empty()) return absl::InvalidArgumentError("apiVersion: required");
  if (!IsDnsName(namespace_name, false, 63)) {
    return absl::InvalidArgumentError(
        absl::StrCat("metadata.namespace: \"", namespace_name, "\" is not a DNS label"));
  }
  // The core group ("v1") is served under /api, the others under /apis/<group>/<version>.
  return absl::StrCat(api_version.find('/') == absl::string_view::npos ? "/api/" : "/apis/",
                      api_version, "/namespaces/", namespace_name, "/", resource->plural);
}

absl::StatusOr<std::string> ObjectPath(absl::string_view api_version, absl::string_view kind,
                                       absl::string_view namespace_name, absl::string_view name) {
  absl::StatusOr<std::string> collection = CollectionPath(api_version, kind, namespace_name);
  if (!collection.ok()) return collection.status();
  if (!IsDnsName(name, true, 253)) {
    return absl::InvalidArgumentError(
        absl::StrCat("metadata.name: \"", name, "\" is not a DNS subdomain"));
  }
  return absl::StrCat(*collection, "/", name);
}

bool IsExpired(const absl::Status& status) {
  return status.code() == absl::StatusCode::kOutOfRange;
}

absl::StatusOr<std::unique_ptr<KubeClient>> KubeClient::Create(const KubeConfig& config,
                                                               KubeClientOptions options) {
  if (!config.token.empty() && !config.token_file.empty()) {
    return absl::InvalidArgumentError("token, token_file: set one of them, not both");
  }
  if (options.page_size <= 0) return absl::InvalidArgumentError("page_size: must be positive");
  absl::StatusOr<std::unique_ptr<HttpsTransport>> transport = HttpsTransport::Create(config);
  if (!transport.ok()) return transport.status();
  return std::unique_ptr<KubeClient>(
      new KubeClient(std::move(*transport), config, std::move(options)));
}

KubeClient::KubeClient(std::unique_ptr<HttpsTransport> transport, KubeConfig config,
                       KubeClientOptions options)
    : transport_(std::move(transport)),
      options_(std::move(options)),
      static_token_(std::move(config.token)),
      default_namespace_(std::move(config.namespace_name)) {
  if (!config.token_file.empty()) {
    token_file_.emplace(config.token_file, options_.token_reload, *options_.clock);
  }
}

absl::StatusOr<HttpResponse> KubeClient::Authorized(
    HttpRequest request,
    const std::function<absl::StatusOr<HttpResponse>(const HttpRequest&)>& exchange) {
  request.bearer_token = static_token_;
  if (token_file_) {
    absl::StatusOr<std::string> token = token_file_->Get();
    if (!token.ok()) return token.status();
    request.bearer_token = *std::move(token);
  }
  absl::StatusOr<HttpResponse> response = exchange(request);
  // A rejected token may just have been rotated: the kubelet replaces the file before the old
  // token expires, but the server may already prefer the new one.
  if (response.ok() && response->status == 401 && token_file_ && token_file_->Reload()) {
    absl::StatusOr<std::string> token = token_file_->Get();
    if (!token.ok()) return token.status();
    request.bearer_token = *std::move(token);
    response = exchange(request);
  }
  return response;
}

absl::StatusOr<std::string> KubeClient::CallForBody(HttpRequest request) {
  const std::string what = Describe(request);
  absl::StatusOr<HttpResponse> response =
      Authorized(std::move(request), [this](const HttpRequest& authorized) {
        return transport_->RoundTrip(authorized, options_.request_timeout);
      });
  if (!response.ok()) return response.status();
  if (response->status < 200 || response->status >= 300) {
    return ApiError(what, response->status, response->body);
  }
  return std::move(response->body);
}

absl::StatusOr<boost::json::object> KubeClient::Call(HttpRequest request) {
  const std::string what = Describe(request);
  absl::StatusOr<std::string> body = CallForBody(std::move(request));
  if (!body.ok()) return body.status();
  return ParseObject(what, *body);
}

absl::StatusOr<boost::json::object> KubeClient::Apply(const YAML::Node& object,
                                                      const std::string& field_manager) {
  const YAML::Node metadata =
      object.IsDefined() && object.IsMap() ? object["metadata"] : YAML::Node();
  absl::StatusOr<std::string> path =
      ObjectPath(Scalar(object, "apiVersion"), Scalar(object, "kind"),
                 Scalar(metadata, "namespace"), Scalar(metadata, "name"));
  if (!path.ok()) return path.status();
  HttpRequest request;
  request.method = http::verb::patch;
  request.target =
      *path +
      Query({{"fieldManager", field_manager.empty() ? options_.field_manager : field_manager},
             {"force", "true"}});
  request.content_type = "application/apply-patch+yaml";
  request.body = ToYaml({object});
  return Call(std::move(request));
}

absl::StatusOr<boost::json::object> KubeClient::Get(const std::string& path) {
  HttpRequest request;
  request.target = path;
  return Call(std::move(request));
}

absl::StatusOr<std::string> KubeClient::PodLog(absl::string_view namespace_name,
                                               absl::string_view pod, int tail_lines) {
  absl::StatusOr<std::string> path = ObjectPath("v1", "Pod", namespace_name, pod);
  if (!path.ok()) return path.status();
  HttpRequest request;
  request.target = absl::StrCat(
      *path, "/log",
      tail_lines > 0 ? Query({{"tailLines", absl::StrCat(tail_lines)}}) : std::string());
  return CallForBody(std::move(request));
}

absl::Status KubeClient::Delete(const std::string& path) {
  HttpRequest request;
  request.method = http::verb::delete_;
  request.target = path;
  request.content_type = "application/json";
  request.body = R"({"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Foreground"})";
  return Call(std::move(request)).status();
}

absl::StatusOr<ObjectList> KubeClient::List(const std::string& path, const Selector& selector) {
  ObjectList list;
  std::string continue_token;
  do {
    HttpRequest request;
    request.target = path + Query({{"labelSelector", selector.labels},
                                   {"fieldSelector", selector.fields},
                                   {"limit", absl::StrCat(options_.page_size)},
                                   {"continue", continue_token}});
    absl::StatusOr<json::object> page = Call(std::move(request));
    if (!page.ok()) return page.status();
    const json::object& metadata = ObjectField(*page, "metadata");
    // Every page is part of the snapshot the first one was taken from.
    if (list.resource_version.empty()) {
      list.resource_version = StringField(metadata, "resourceVersion");
    }
    continue_token = StringField(metadata, "continue");
    if (json::value* items = page->if_contains("items"); items != nullptr && items->is_array()) {
      for (json::value& item : items->get_array()) {
        if (item.is_object()) list.items.push_back(std::move(item.get_object()));
      }
    }
  } while (!continue_token.empty());
  return list;
}

absl::Status KubeClient::Watch(const std::string& path, const Selector& selector,
                               const std::string& resource_version, const WatchCallback& on_event,
                               std::stop_token stop) {
  HttpRequest request;
  request.target =
      path +
      Query({{"labelSelector", selector.labels},
             {"fieldSelector", selector.fields},
             {"watch", "1"},
             {"allowWatchBookmarks", "true"},
             {"resourceVersion", resource_version},
             {"timeoutSeconds", absl::StrCat(absl::ToInt64Seconds(options_.watch_timeout))}});
  const std::string what = Describe(request);
  // Events are newline-terminated JSON objects; a chunk may hold several, or part of one.
  std::string pending;
  const HttpsTransport::BodyCallback on_body = [&](std::string_view piece) {
    pending.append(piece);
    size_t start = 0;
    for (size_t end; (end = pending.find('\n', start)) != std::string::npos; start = end + 1) {
      const std::string_view line = Trim(std::string_view(pending).substr(start, end - start));
      if (line.empty()) continue;
      if (absl::Status dispatched = Dispatch(what, line, on_event); !dispatched.ok()) {
        return dispatched;
      }
    }
    pending.erase(0, start);
    if (pending.size() > kMaxEventBytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat(what, ": a watch event is larger than ", kMaxEventBytes, " bytes"));
    }
    return absl::OkStatus();
  };
  absl::StatusOr<HttpResponse> response =
      Authorized(std::move(request), [&](const HttpRequest& authorized) {
        return transport_->Stream(authorized, options_.request_timeout,
                                  options_.watch_timeout + options_.request_timeout, on_body, stop);
      });
  if (!response.ok()) {
    return absl::IsCancelled(response.status()) && stop.stop_requested() ? absl::OkStatus()
                                                                         : response.status();
  }
  if (response->status != 200) return ApiError(what, response->status, response->body);
  // The last event may lack its newline.
  if (const std::string_view rest = Trim(pending); !rest.empty()) {
    return Dispatch(what, rest, on_event);
  }
  return absl::OkStatus();
}

}  // namespace eofaas::control::k8s
