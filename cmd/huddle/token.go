package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/huddle-rtc/huddle/signaling/auth"
)

func token(args []string) error {
	f := newEnvFlags("token")
	key := f.String("api-key", "", "API key (the token's kid)")
	secret := f.String("api-secret", "", "API secret")
	identity := f.String("identity", "", "stable id of the person or bot")
	name := f.String("name", "", "display name (default: the identity)")
	room := f.String("room", "", "room to join")
	ttl := f.Duration("ttl", 6*time.Hour, "how long the token is valid")
	grants := f.String("grants", "publish,subscribe,publishData,editDocs", "comma-separated: publish, subscribe, publishData, editDocs, roomAdmin")
	if err := f.parse(args); err != nil {
		return err
	}
	if *key == "" || *secret == "" {
		return errors.New("token: --api-key and --api-secret are required (dev mode prints them in the server log)")
	}
	g, err := parseGrants(*grants)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	if *name == "" {
		*name = *identity
	}
	tok, err := auth.Mint(*key, *secret, auth.Claims{Identity: *identity, Name: *name, Room: *room, Grants: g}, *ttl)
	if err != nil {
		return err
	}
	fmt.Println(tok)
	return nil
}
