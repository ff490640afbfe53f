// The ingress's HTTP/1.1 request parser, fed whole messages and messages in pieces.
#include "proxy/ingress/request_parser.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"

namespace eofaas::proxy {
namespace {

using State = RequestParser::State;

constexpr size_t kMaxHead = 256;
constexpr uint64_t kMaxBody = 64;

// Parses one request from `text`, given `piece` bytes at a time as a connection's buffer would:
// the bytes a call leaves unused come again, followed by the next piece. Returns the bytes left
// over for the next request.
std::string ParseInPieces(RequestParser& parser, HttpRequest& request, const std::string& text,
                          size_t piece) {
  parser.Start(request);
  std::string buffer;
  size_t given = 0;
  while (parser.state() == State::kNeedMore && given < text.size()) {
    buffer += text.substr(given, piece);
    given += piece;
    buffer.erase(0, parser.Parse(buffer));
  }
  return buffer + text.substr(std::min(given, text.size()));
}

TEST(RequestParserTest, ReadsARequestWithALengthAndLeavesThePipelinedNextOne) {
  const std::string first =
      "POST /v1/functions/f:invoke HTTP/1.1\r\nHost: proxy\r\ncontent-type:  application/json "
      "\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
  const std::string second = "GET /x HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\n\r\n";
  for (size_t piece : {size_t{1}, size_t{2}, size_t{5}, first.size() + second.size()}) {
    SCOPED_TRACE(piece);
    RequestParser parser(kMaxHead, kMaxBody);
    HttpRequest request;
    const std::string rest = ParseInPieces(parser, request, first + second, piece);
    ASSERT_EQ(parser.state(), State::kDone) << parser.error();
    EXPECT_EQ(request.method, "POST");
    EXPECT_EQ(request.target, "/v1/functions/f:invoke");
    EXPECT_EQ(request.content_type, "application/json");
    EXPECT_EQ(request.body, "{\"a\":1}");
    EXPECT_EQ(request.version, 11u);
    EXPECT_TRUE(request.keep_alive);
    EXPECT_EQ(rest, second);

    // The same parser and request, for the next one: nothing of the first is left.
    EXPECT_EQ(ParseInPieces(parser, request, rest, piece), "");
    ASSERT_EQ(parser.state(), State::kDone) << parser.error();
    EXPECT_EQ(request.method, "GET");
    EXPECT_EQ(request.target, "/x");
    EXPECT_EQ(request.content_type, "text/plain");
    EXPECT_EQ(request.body, "");
  }
}

TEST(RequestParserTest, DecodesAChunkedBodyWithExtensionsAndTrailers) {
  const std::string text =
      "\r\n\r\nPOST /f HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n"
      "5;name=value\r\nhello\r\n1\r\n \r\nA \r\n0123456789\r\n0\r\nChecksum: 1\r\n\r\nNEXT";
  for (size_t piece : {size_t{1}, size_t{3}, text.size()}) {
    SCOPED_TRACE(piece);
    RequestParser parser(kMaxHead, kMaxBody);
    HttpRequest request;
    EXPECT_EQ(ParseInPieces(parser, request, text, piece), "NEXT");
    ASSERT_EQ(parser.state(), State::kDone) << parser.error();
    EXPECT_EQ(request.method, "POST");  // the empty lines before it are skipped
    EXPECT_EQ(request.body, "hello 0123456789");
  }
}

TEST(RequestParserTest, KeepsTheConnectionAsTheVersionAndConnectionFieldSay) {
  struct Case {
    std::string version, connection;
    bool keep_alive;
  };
  for (const Case& c : {Case{"HTTP/1.1", "", true}, Case{"HTTP/1.1", "Upgrade, close", false},
                        Case{"HTTP/1.0", "", false}, Case{"HTTP/1.0", "Keep-Alive", true},
                        Case{"HTTP/1.0", "keep-alive, close", false}}) {
    RequestParser parser(kMaxHead, kMaxBody);
    HttpRequest request;
    const std::string field = c.connection.empty() ? "" : "Connection: " + c.connection + "\r\n";
    ParseInPieces(parser, request, "GET / " + c.version + "\r\nHost: h\r\n" + field + "\r\n", 100);
    ASSERT_EQ(parser.state(), State::kDone) << parser.error();
    EXPECT_EQ(request.keep_alive, c.keep_alive) << c.version << " " << c.connection;
    EXPECT_EQ(request.version, c.version == "HTTP/1.0" ? 10u : 11u);
  }
}

TEST(RequestParserTest, RefusesWhatCouldBeReadTwoWaysOrExceedsTheLimits) {
  struct Case {
    std::string text;
    State state;
    std::string error;
  };
  const std::string post = "POST / HTTP/1.1\r\nHost: h\r\n";
  const std::string chunked = post + "Transfer-Encoding: chunked\r\n\r\n";
  const Case cases[] = {
      {"POST /\r\n\r\n", State::kBad, "request line"},
      {"POST  / HTTP/1.1\r\nHost: h\r\n\r\n", State::kBad, "target"},
      {"POST /a b HTTP/1.1\r\nHost: h\r\n\r\n", State::kBad, "version"},
      {"P(ST / HTTP/1.1\r\nHost: h\r\n\r\n", State::kBad, "method"},
      {"POST / HTTP/2.0\r\n\r\n", State::kBad, "version"},
      {"POST / HTTP/1.1 \r\n\r\n", State::kBad, "version"},
      {post + "Content-Length : 1\r\n\r\nx", State::kBad, "field without a name"},
      {post + "Host\r\n\r\n", State::kBad, "field without a name"},
      {"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", State::kBad, "Host: missing"},
      {post + "Host: h\r\n\r\n", State::kBad, "Host: given more than once"},
      {post + "A: b\r\n c\r\n\r\n", State::kBad, "folded"},
      {post + "A: b\nc\r\n\r\n", State::kBad, "does not end with CRLF"},
      {post + "A: b\rc\r\n\r\n", State::kBad, "A: a control character"},
      {post + "Content-Length: x\r\n\r\n", State::kBad, "Content-Length: not a number"},
      {post + "Content-Length: -1\r\n\r\n", State::kBad, "Content-Length: not a number"},
      {post + "Content-Length: +1\r\n\r\n", State::kBad, "Content-Length: not a number"},
      {post + "Content-Length: 99999999999999999999999\r\n\r\n", State::kBad,
       "Content-Length: not a number"},
      {post + "Content-Length: 1\r\nContent-Length: 2\r\n\r\nxx", State::kBad, "twice"},
      {post + "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", State::kBad,
       "Transfer-Encoding: not allowed with Content-Length"},
      {post + "Transfer-Encoding: gzip, chunked\r\n\r\n", State::kNotImplemented,
       "Transfer-Encoding: gzip is not supported"},
      {post + "Transfer-Encoding: chunked, chunked\r\n\r\n", State::kBad, "not the last"},
      {post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", State::kBad,
       "not the last"},
      {post + "Transfer-Encoding: ,\r\n\r\n", State::kBad, "Transfer-Encoding: empty"},
      // RFC 9112 section 6.1: faulty framing, however the body would read.
      {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", State::kBad,
       "Transfer-Encoding: not allowed in HTTP/1.0"},
      {chunked + "zz\r\n", State::kBad, "not hexadecimal"},
      {chunked + "3 x\r\nabc\r\n0\r\n\r\n", State::kBad, "extension"},
      {chunked + "3\r\nabcX\r\n", State::kBad, "does not end with CRLF"},
      {chunked + "1000000000000000\r\n", State::kBad, "too large"},
      {chunked + "0\r\nno colon\r\n\r\n", State::kBad, "trailer"},
      {post + "Content-Length: 65\r\n\r\n", State::kBodyTooLarge, "Content-Length: larger"},
      {chunked + "20\r\n" + std::string(32, 'a') + "\r\n21\r\n", State::kBodyTooLarge,
       "chunked body: larger"},
      {post + "A: " + std::string(kMaxHead, 'a') + "\r\n\r\n", State::kHeadTooLarge, "exceed"},
      {post + "A: " + std::string(kMaxHead, 'a'), State::kHeadTooLarge, "exceed"},
      {chunked + "0\r\nA: " + std::string(kMaxHead, 'a'), State::kHeadTooLarge, "trailer"},
  };
  for (const Case& c : cases) {
    for (size_t piece : {size_t{1}, c.text.size()}) {
      RequestParser parser(kMaxHead, kMaxBody);
      HttpRequest request;
      ParseInPieces(parser, request, c.text, piece);
      EXPECT_EQ(parser.state(), c.state) << c.text << "\nin pieces of " << piece;
      EXPECT_TRUE(absl::StrContains(parser.error(), c.error))
          << c.text << "\nerror: " << parser.error();
    }
  }
}

// The connection answers 100 (Continue) when the head of an HTTP/1.1 request expects it and the
// body is still to come; never for HTTP/1.0, for a body that came with the head, or without
// the field.
TEST(RequestParserTest, TellsWhenTheClientWaitsForContinue) {
  struct Case {
    std::string head;
    bool expects_continue;
  };
  for (const Case& c : {
           Case{"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
                true},
           Case{"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nTransfer-Encoding: "
                "chunked\r\n\r\n",
                true},
           Case{"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", false},
           Case{"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
                false},
           Case{"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n", false},
       }) {
    RequestParser parser(kMaxHead, kMaxBody);
    HttpRequest request;
    ParseInPieces(parser, request, c.head, 1);
    EXPECT_EQ(request.expects_continue, c.expects_continue) << c.head;
  }
  // A request whose body came along is whole: nothing to wait for.
  RequestParser parser(kMaxHead, kMaxBody);
  HttpRequest request;
  ParseInPieces(
      parser, request,
      "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc", 100);
  EXPECT_EQ(parser.state(), State::kDone);
  EXPECT_FALSE(request.expects_continue);
}

TEST(RequestParserTest, AnUnfinishedRequestNeedsMore) {
  RequestParser parser(kMaxHead, kMaxBody);
  HttpRequest request;
  for (const std::string text :
       {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nab",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"}) {
    ParseInPieces(parser, request, text, 1);
    EXPECT_EQ(parser.state(), State::kNeedMore) << text << parser.error();
  }
}

}  // namespace
}  // namespace eofaas::proxy
