"""The booking lifecycle as pure rules: states, who must act, which commands are allowed, ids."""
