"""dialerd.calllog: the call log (R-LOG-1..3) as a pure fold over AMI events, and its CLI."""
