"""verify: a Report against what the framework said, differences explained."""
