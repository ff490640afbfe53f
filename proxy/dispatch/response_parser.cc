#include "proxy/dispatch/response_parser.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>

#include "common/utf8.h"

namespace eofaas::proxy {

namespace http = boost::beast::http;

FunctionError ParseFunctionError(std::string_view body, FunctionErrorHeader header) {
  FunctionError error{.handled = header == FunctionErrorHeader::kHandled};
  google::protobuf::Struct parsed;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  const bool ok = google::protobuf::util::JsonStringToMessage(
                      google::protobuf::StringPiece(body.data(), body.size()), &parsed, options)
                      .ok();
  const auto* fields = ok ? &parsed.fields() : nullptr;
  if (fields != nullptr && fields->contains("error") && fields->at("error").has_struct_value()) {
    const auto& inner = fields->at("error").struct_value().fields();
    if (auto it = inner.find("type"); it != inner.end()) error.type = it->second.string_value();
    if (auto it = inner.find("message"); it != inner.end()) {
      error.message = it->second.string_value();
    }
    return error;
  }
  constexpr size_t kMaxMessage = 4096;
  error.type = "InvalidFunctionError";
  const std::string_view head = body.substr(0, kMaxMessage);
  error.message = common::ValidUtf8({head.data(), head.size()});  // a JSON and proto3 string
  return error;
}

ResponseParser::ResponseParser(uint64_t body_limit, uint32_t header_limit) {
  this->body_limit(body_limit);
  this->header_limit(header_limit);
}

void ResponseParser::on_request_impl(http::verb, string_view, string_view, int, error_code& ec) {
  ec = http::error::bad_method;  // unreachable: this is a response parser
}

void ResponseParser::on_response_impl(int code, string_view, int version, error_code& ec) {
  if (version < 10) ec = http::error::bad_version;
  status_ = code;
}

void ResponseParser::on_field_impl(http::field, string_view name_string, string_view value,
                                   error_code&) {
  if (!boost::beast::iequals(name_string, kFunctionErrorHeader)) return;
  function_error_ = boost::beast::iequals(value, "handled") ? FunctionErrorHeader::kHandled
                                                            : FunctionErrorHeader::kUnhandled;
}

void ResponseParser::on_body_init_impl(const boost::optional<std::uint64_t>& content_length,
                                       error_code&) {
  // The limit was checked against Content-Length before this call.
  if (content_length) body_.reserve(*content_length);
}

size_t ResponseParser::on_body_impl(string_view body, error_code&) {
  body_.append(body.data(), body.size());
  return body.size();
}

size_t ResponseParser::on_chunk_body_impl(std::uint64_t, string_view body, error_code&) {
  body_.append(body.data(), body.size());
  return body.size();
}

}  // namespace eofaas::proxy
