// The page GET / serves (page.cpp).
#pragma once

#include <string_view>

namespace palign::server::detail {

std::string_view page_html();

}  // namespace palign::server::detail
