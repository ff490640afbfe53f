// Boost.JSON's implementation, compiled once for every user of the client (Debian ships Boost.JSON
// as headers only).
#include <boost/json/src.hpp>
