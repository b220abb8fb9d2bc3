package handlers

// Temporary: operations not implemented yet answer 500. Delete with the last one.

import (
	"context"
	"errors"

	"github.com/rolegate/rolegate/gen/api"
)

func (Users) ChangeMyPassword(context.Context, api.ChangeMyPasswordRequestObject) (api.ChangeMyPasswordResponseObject, error) {
	return nil, errors.New("not implemented")
}

func (Users) ListRoles(context.Context, api.ListRolesRequestObject) (api.ListRolesResponseObject, error) {
	return nil, errors.New("not implemented")
}

func (Users) CreateRole(context.Context, api.CreateRoleRequestObject) (api.CreateRoleResponseObject, error) {
	return nil, errors.New("not implemented")
}

func (Users) DeleteRole(context.Context, api.DeleteRoleRequestObject) (api.DeleteRoleResponseObject, error) {
	return nil, errors.New("not implemented")
}

func (Users) ListUsers(context.Context, api.ListUsersRequestObject) (api.ListUsersResponseObject, error) {
	return nil, errors.New("not implemented")
}

func (Users) CreateUser(context.Context, api.CreateUserRequestObject) (api.CreateUserResponseObject, error) {
	return nil, errors.New("not implemented")
}

func (Users) DeleteUser(context.Context, api.DeleteUserRequestObject) (api.DeleteUserResponseObject, error) {
	return nil, errors.New("not implemented")
}

func (Users) GetUser(context.Context, api.GetUserRequestObject) (api.GetUserResponseObject, error) {
	return nil, errors.New("not implemented")
}

func (Users) DisableUser(context.Context, api.DisableUserRequestObject) (api.DisableUserResponseObject, error) {
	return nil, errors.New("not implemented")
}

func (Users) EnableUser(context.Context, api.EnableUserRequestObject) (api.EnableUserResponseObject, error) {
	return nil, errors.New("not implemented")
}

func (Users) SetUserRoles(context.Context, api.SetUserRolesRequestObject) (api.SetUserRolesResponseObject, error) {
	return nil, errors.New("not implemented")
}
