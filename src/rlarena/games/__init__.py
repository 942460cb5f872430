"""One package per built-in game; Connect Four's other modules move here in issue 14 part 4."""
