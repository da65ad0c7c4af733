"""Small helpers of the detection floor: device choice and seeding, reading torch files."""
