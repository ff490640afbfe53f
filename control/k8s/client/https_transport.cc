#include "control/k8s/client/https_transport.h"

#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <exception>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace eofaas::control::k8s {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using Deadline = std::chrono::steady_clock::time_point;

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr uint64_t kMaxBodyBytes = 64 << 20;

// What one exchange needs to know of the server.
struct Peer {
  const std::string& server;
  const std::string& host;
  const std::string& port;
  bool verify;
};

absl::Status Failure(const Peer& peer, absl::string_view step,
                     const boost::system::error_code& error, bool stopped) {
  if (stopped) return absl::CancelledError(absl::StrCat(peer.server, ": stopped"));
  if (error == beast::error::timeout) {
    return absl::DeadlineExceededError(absl::StrCat(peer.server, ": ", step, ": timed out"));
  }
  return absl::UnavailableError(absl::StrCat(peer.server, ": ", step, ": ", error.message()));
}

// Connects, shakes hands, sends `request` and reads the answer; `stopped` is set (on this
// coroutine's thread) when the caller gives up.
asio::awaitable<absl::StatusOr<HttpResponse>> Talk(TlsStream& stream, Peer peer,
                                                   const http::request<http::string_body>& request,
                                                   Deadline deadline,
                                                   Deadline::duration idle_timeout,
                                                   const HttpsTransport::BodyCallback* on_body,
                                                   const bool& stopped) {
  beast::tcp_stream& tcp = beast::get_lowest_layer(stream);
  tcp.expires_at(deadline);
  asio::ip::tcp::resolver resolver(co_await asio::this_coro::executor);
  auto [resolve_error, endpoints] = co_await resolver.async_resolve(peer.host, peer.port, kNoThrow);
  if (resolve_error) co_return Failure(peer, "resolving", resolve_error, stopped);
  auto [connect_error, endpoint] = co_await tcp.async_connect(endpoints, kNoThrow);
  if (connect_error) co_return Failure(peer, "connecting", connect_error, stopped);

  boost::system::error_code not_an_address;
  asio::ip::make_address(peer.host, not_an_address);
  if (not_an_address) SSL_set_tlsext_host_name(stream.native_handle(), peer.host.c_str());
  if (peer.verify) stream.set_verify_callback(ssl::host_name_verification(peer.host));
  auto [handshake_error] = co_await stream.async_handshake(ssl::stream_base::client, kNoThrow);
  if (handshake_error) co_return Failure(peer, "TLS handshake", handshake_error, stopped);

  auto [write_error, written] = co_await http::async_write(stream, request, kNoThrow);
  if (write_error) co_return Failure(peer, "sending the request", write_error, stopped);
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);  // checked below, for collected bodies only
  beast::flat_buffer buffer;
  auto [header_error, header_bytes] =
      co_await http::async_read_header(stream, buffer, parser, kNoThrow);
  if (header_error) co_return Failure(peer, "reading the response", header_error, stopped);

  HttpResponse response;
  response.status = parser.get().result_int();
  const bool streaming = on_body != nullptr && response.status == 200;
  std::array<char, 16 * 1024> piece;
  while (!parser.is_done()) {
    if (stopped) co_return Failure(peer, "", {}, stopped);
    if (streaming) tcp.expires_after(idle_timeout);
    parser.get().body().data = piece.data();
    parser.get().body().size = piece.size();
    auto [read_error, read] = co_await http::async_read_some(stream, buffer, parser, kNoThrow);
    if (read_error == http::error::need_buffer) read_error = {};
    if (read_error) co_return Failure(peer, "reading the response", read_error, stopped);
    const size_t received = piece.size() - parser.get().body().size;
    if (streaming) {
      if (received == 0) continue;
      absl::Status accepted = (*on_body)(std::string_view(piece.data(), received));
      if (!accepted.ok()) co_return accepted;
    } else {
      if (response.body.size() + received > kMaxBodyBytes) {
        co_return absl::ResourceExhaustedError(
            absl::StrCat(peer.server, ": response body larger than ", kMaxBodyBytes, " bytes"));
      }
      response.body.append(piece.data(), received);
    }
  }
  co_return response;
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpsTransport>> HttpsTransport::Create(const KubeConfig& config) {
  absl::string_view rest = config.server;
  if (!absl::ConsumePrefix(&rest, "https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("server: \"", config.server, "\" is not an https:// URL"));
  }
  auto transport = std::unique_ptr<HttpsTransport>(new HttpsTransport());
  transport->server_ = config.server;
  const size_t slash = rest.find('/');
  absl::string_view authority = rest.substr(0, slash);
  if (slash != absl::string_view::npos) {
    transport->path_prefix_ = std::string(absl::StripSuffix(rest.substr(slash), "/"));
  }
  // host, [v6 address] or either with :port.
  absl::string_view host = authority;
  absl::string_view port = "443";
  if (absl::ConsumePrefix(&host, "[")) {
    const size_t close = host.find(']');
    if (close == absl::string_view::npos) host = "";
    absl::string_view after = host.substr(close + 1);
    host = host.substr(0, close);
    if (absl::ConsumePrefix(&after, ":")) port = after;
  } else if (const size_t colon = host.rfind(':'); colon != absl::string_view::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  if (host.empty() || port.empty() ||
      !std::all_of(port.begin(), port.end(), [](char c) { return absl::ascii_isdigit(c); })) {
    return absl::InvalidArgumentError(
        absl::StrCat("server: \"", config.server, "\" has no valid host[:port]"));
  }
  transport->host_ = std::string(host);
  transport->port_ = std::string(port);
  transport->authority_ = std::string(authority);

  auto tls = std::make_unique<ssl::context>(ssl::context::tls_client);
  tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  boost::system::error_code error;
  if (config.insecure_skip_tls_verify) {
    transport->verify_ = false;
    tls->set_verify_mode(ssl::verify_none);
  } else {
    tls->set_verify_mode(ssl::verify_peer);
    if (config.certificate_authority_pem.empty()) {
      tls->set_default_verify_paths(error);
    } else {
      tls->add_certificate_authority(asio::buffer(config.certificate_authority_pem), error);
    }
    if (error) {
      return absl::InvalidArgumentError(
          absl::StrCat("certificate-authority: cannot load: ", error.message()));
    }
  }
  if (!config.client_certificate_pem.empty()) {
    tls->use_certificate_chain(asio::buffer(config.client_certificate_pem), error);
    if (error) {
      return absl::InvalidArgumentError(
          absl::StrCat("client-certificate: cannot load: ", error.message()));
    }
    tls->use_private_key(asio::buffer(config.client_key_pem), ssl::context::pem, error);
    if (error) {
      return absl::InvalidArgumentError(absl::StrCat("client-key: cannot load: ", error.message()));
    }
  }
  transport->tls_ = std::move(tls);
  return transport;
}

absl::StatusOr<HttpResponse> HttpsTransport::RoundTrip(const HttpRequest& request,
                                                       absl::Duration timeout) {
  return Exchange(request, timeout, absl::ZeroDuration(), nullptr, {});
}

absl::StatusOr<HttpResponse> HttpsTransport::Stream(const HttpRequest& request,
                                                    absl::Duration timeout,
                                                    absl::Duration idle_timeout,
                                                    const BodyCallback& on_body,
                                                    std::stop_token stop) {
  return Exchange(request, timeout, idle_timeout, &on_body, std::move(stop));
}

absl::StatusOr<HttpResponse> HttpsTransport::Exchange(const HttpRequest& request,
                                                      absl::Duration timeout,
                                                      absl::Duration idle_timeout,
                                                      const BodyCallback* on_body,
                                                      std::stop_token stop) {
  if (stop.stop_requested()) return absl::CancelledError(absl::StrCat(server_, ": stopped"));
  http::request<http::string_body> message(request.method, path_prefix_ + request.target, 11);
  message.set(http::field::host, authority_);
  message.set(http::field::user_agent, "eofaas-control");
  message.set(http::field::accept, "application/json");
  if (!request.bearer_token.empty()) {
    message.set(http::field::authorization, "Bearer " + request.bearer_token);
  }
  if (!request.content_type.empty()) {
    message.set(http::field::content_type, request.content_type);
    message.body() = request.body;
  }
  message.prepare_payload();

  asio::io_context io;
  TlsStream stream(io, *tls_);
  bool stopped = false;
  absl::StatusOr<HttpResponse> result = absl::UnknownError(absl::StrCat(server_, ": not sent"));
  const Deadline deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout);
  asio::co_spawn(io,
                 Talk(stream, Peer{server_, host_, port_, verify_}, message, deadline,
                      absl::ToChronoNanoseconds(idle_timeout), on_body, stopped),
                 [&](std::exception_ptr failure, absl::StatusOr<HttpResponse> outcome) {
                   if (failure) {
                     outcome = absl::UnknownError(absl::StrCat(server_, ": exchange failed"));
                   }
                   result = std::move(outcome);
                 });
  // Runs on the thread that requests the stop; the cancellation itself runs on this one.
  std::stop_callback on_stop(stop, [&] {
    asio::post(io, [&] {
      stopped = true;
      beast::get_lowest_layer(stream).cancel();
    });
  });
  io.run();
  return result;
}

}  // namespace eofaas::control::k8s
