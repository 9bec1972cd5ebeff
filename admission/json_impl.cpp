// The one translation unit that compiles Boost.JSON (header-only mode): every other file
// includes <boost/json.hpp> and links jg_admission. Do not include <boost/json/src.hpp>
// anywhere else, or the link sees its definitions twice.
#include <boost/json/src.hpp>
