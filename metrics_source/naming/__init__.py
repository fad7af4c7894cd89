"""Names people give to campaigns, broadcasts, newsletters, transactional messages, actions
and journeys, which events only know by number: edited in the admin or imported from a CSV,
shown by every chart, table and CSV beside the id."""
