// What the user commands share: a stored user as JSON and as a strategy's profile (palign/server/profiles.h, where
// the server reads them too).
#pragma once

#include "palign/server/profiles.h"

namespace palign::cli {

using server::describe_user;
using server::personalization_of;

}  // namespace palign::cli
