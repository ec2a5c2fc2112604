"""The task service's part of the choreography: it reacts to session events (the root task of a
started session, the sessions it may schedule) and assigns READY leaves to agents."""
