// Parses a replica's answer to POST /invoke. Only what the dispatcher needs is kept (status, the
// function-error header, the body), so no per-field allocation happens on the hot path.
#pragma once

#include <boost/beast/http/basic_parser.hpp>
#include <cstdint>
#include <string>
#include <string_view>

namespace eofaas::proxy {

/// The header that marks a function error: "handled" or "unhandled".
inline constexpr char kFunctionErrorHeader[] = "X-Eofaas-Function-Error";

/// What X-Eofaas-Function-Error said.
enum class FunctionErrorHeader { kNone, kHandled, kUnhandled };

/// A failure the handler reported: the replica answered with X-Eofaas-Function-Error and a body
/// `{"error":{"type","message"}}`.
struct FunctionError {
  std::string type;
  std::string message;
  /// The handler raised the runtime's FunctionError on purpose (header "handled").
  bool handled = false;
};

/// Reads a function error body. A body that is not the expected JSON becomes the message, so a
/// caller always learns something.
FunctionError ParseFunctionError(std::string_view body, FunctionErrorHeader header);

/// A Beast parser for one HTTP/1.1 response. Single use; not thread-safe.
class ResponseParser final : public boost::beast::http::basic_parser<false> {
 public:
  /// `body_limit`: a larger body fails the read with http::error::body_limit.
  ResponseParser(uint64_t body_limit, uint32_t header_limit);

  int status() const { return status_; }
  FunctionErrorHeader function_error() const { return function_error_; }
  std::string& body() { return body_; }

 private:
  using string_view = boost::beast::string_view;
  using error_code = boost::beast::error_code;

  void on_request_impl(boost::beast::http::verb, string_view, string_view, int,
                       error_code&) override;
  void on_response_impl(int code, string_view reason, int version, error_code& ec) override;
  void on_field_impl(boost::beast::http::field name, string_view name_string, string_view value,
                     error_code& ec) override;
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>& content_length,
                         error_code&) override;
  size_t on_body_impl(string_view body, error_code&) override;
  void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
  size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code&) override;
  void on_finish_impl(error_code&) override {}

  int status_ = 0;
  FunctionErrorHeader function_error_ = FunctionErrorHeader::kNone;
  std::string body_;
};

}  // namespace eofaas::proxy
